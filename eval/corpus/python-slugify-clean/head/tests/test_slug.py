from text.slug import slugify


def test_words_are_joined_by_hyphens():
    assert slugify("Hello, World!") == "hello-world"


def test_accents_are_dropped_and_length_is_capped():
    assert slugify("Crème brûlée " * 10, max_length=12) == "creme-brulee"
