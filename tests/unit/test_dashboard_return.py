"""After an action the browser goes back to the page its form was on, with that page's filters
and without the message of an earlier action."""

from app.dashboard.actions import page_to_return_to

ORIGIN = "http://worker:8000"


def test_the_form_s_page_keeps_its_filters_and_drops_earlier_messages() -> None:
    assert page_to_return_to(f"{ORIGIN}/dashboard/runs?job=a&status=dead", ORIGIN) == (
        "/dashboard/runs?job=a&status=dead"
    )
    assert page_to_return_to(f"{ORIGIN}/dashboard/runs?notice=done&job=a", ORIGIN) == (
        "/dashboard/runs?job=a"
    )
    assert page_to_return_to(f"{ORIGIN}/dashboard/runs?job=a&problem=no", ORIGIN) == (
        "/dashboard/runs?job=a"
    )
    assert page_to_return_to(f"{ORIGIN}/dashboard/failures?notice=x", ORIGIN) == (
        "/dashboard/failures"
    )


def test_another_site_or_another_part_of_the_app_is_not_returned_to() -> None:
    assert page_to_return_to("http://evil.example/dashboard/runs", ORIGIN) is None
    assert page_to_return_to(f"{ORIGIN}/api/jobs", ORIGIN) is None
    assert page_to_return_to(f"{ORIGIN}/dashboardx", ORIGIN) is None
    assert page_to_return_to("", ORIGIN) is None
