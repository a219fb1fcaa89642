"""GitLab offset pagination: page/per_page in, X-* headers and a Link header out."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from standins.gitlab.errors import ApiError

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100


def paginate(
    items: list[Any], query: dict[str, Any], base_url: str, path: str
) -> tuple[list[Any], dict[str, str]]:
    try:
        page = max(1, int(query.get("page", 1)))
        per_page = int(query.get("per_page", DEFAULT_PER_PAGE))
    except (TypeError, ValueError):
        raise ApiError(400, "page is invalid", key="error") from None
    # GitLab silently clamps per_page instead of rejecting it.
    per_page = DEFAULT_PER_PAGE if per_page < 1 else min(per_page, MAX_PER_PAGE)
    total = len(items)
    total_pages = max(1, -(-total // per_page))
    chunk = items[(page - 1) * per_page : page * per_page]
    headers = {
        "X-Page": str(page),
        "X-Per-Page": str(per_page),
        "X-Total": str(total),
        "X-Total-Pages": str(total_pages),
        "X-Next-Page": str(page + 1) if page < total_pages else "",
        "X-Prev-Page": str(page - 1) if page > 1 else "",
    }
    plain = {k: v for k, v in query.items() if isinstance(v, str) and k not in ("page", "per_page")}

    def link(target: int, rel: str) -> str:
        params = urlencode({**plain, "page": target, "per_page": per_page})
        return f'<{base_url}{path}?{params}>; rel="{rel}"'

    links = [link(page + 1, "next")] if page < total_pages else []
    if page > 1:
        links.append(link(page - 1, "prev"))
    links += [link(1, "first"), link(total_pages, "last")]
    headers["Link"] = ", ".join(links)
    return chunk, headers
