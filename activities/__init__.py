"""All I/O of the service. Every activity the worker runs is listed in `build_activities`."""

from collections.abc import Callable

from activities.diagnose import DiagnoseActivities
from contracts.settings import Settings


def build_activities(settings: Settings) -> list[Callable]:
    diagnose = DiagnoseActivities(settings)
    return [diagnose.diagnose_worker]
