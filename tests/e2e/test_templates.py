"""In the browser: open a template, pick a real customer, type, and watch the preview follow."""

from __future__ import annotations

from shopkeeper import clock
from shopkeeper.messaging import template_service
from tests.e2e.conftest import Shop, shoot
from tests.helpers import ingest, message

WELCOME = {
    "email": {
        "subject": "Welcome, {{ customer.first_name | default: 'friend' }}",
        "html": "<h1>Hello {{ customer.first_name }}</h1><p>Your first order ships free.</p>"
        '<p><a href="{{ preferences_url }}">Your preferences</a></p>',
        "text": "Hello {{ customer.first_name }}, your first order ships free.",
    },
    "sms": {"text": "Hi {{ customer.first_name }}, welcome to the Corner Shop!"},
}


def test_type_in_the_editor_and_the_preview_follows(page: object, shop: Shop) -> None:
    for name in ("lena", "omar"):  # one after the other: Omar is the newest customer
        ingest(
            shop.db,
            shop.workspace_id,
            [message("identify", userId=name, traits={"email": f"{name}@example.com", "first_name": name.title()})],
        )
    with shop.db.session(write=True) as s:
        template, _ = template_service.create_template(
            s,
            shop.workspace_id,
            key="welcome",
            name="Welcome",
            kind="transactional",
            topic=None,
            content=WELCOME,
            actor="test",
            now=clock.now(),
        )
    tab = page
    tab.get_by_role("navigation", name="Main").get_by_role("link", name="Templates").click()  # type: ignore[attr-defined]
    tab.get_by_role("link", name="welcome").click()  # type: ignore[attr-defined]
    tab.wait_for_url(f"**/templates/{template.id}")  # type: ignore[attr-defined]
    preview = tab.locator("#preview")  # type: ignore[attr-defined]
    # The newest customer (Omar) is chosen to begin with; find Lena instead.
    assert "For Omar on Email" in preview.inner_text()
    tab.get_by_label("Find a customer").fill("lena@")  # type: ignore[attr-defined]
    tab.get_by_role("radio", name="Lena").check()  # type: ignore[attr-defined]
    tab.get_by_text("For Lena on Email").wait_for()  # type: ignore[attr-defined]
    assert "Welcome, Lena" in preview.locator("pre[data-part=subject]").inner_text()
    # The HTML part as it will look, in a sandboxed frame.
    preview.frame_locator("iframe").get_by_role("heading", name="Hello Lena").wait_for()

    tab.get_by_label("Channel", exact=True).select_option("sms")  # type: ignore[attr-defined]
    text = preview.locator("pre[data-part=text]")
    text.filter(has_text="Hi Lena, welcome to the Corner Shop!").wait_for()

    sms = tab.get_by_label("SMS text")  # type: ignore[attr-defined]
    sms.fill("")
    sms.press_sequentially("Lena? {{ customer.first_name | upcase }}, 20% off")
    text.filter(has_text="Lena? LENA, 20% off").wait_for()
    # A mistake while typing is said in the preview, and nothing is saved.
    sms.press_sequentially(" {{ customer.first_name | nope }}")
    preview.get_by_text("unknown filter 'nope'").wait_for()
    sms.fill("Lena? {{ customer.first_name | upcase }}, 20% off today")
    text.filter(has_text="Lena? LENA, 20% off today").wait_for()
    tab.evaluate("window.scrollTo(0, 0)")  # type: ignore[attr-defined]
    shoot(tab, "templates")

    tab.get_by_role("button", name="Save as a new version").click()  # type: ignore[attr-defined]
    tab.get_by_text("Saved as version 2.").wait_for()  # type: ignore[attr-defined]
    assert "version 2" in tab.get_by_role("heading", level=1).inner_text()  # type: ignore[attr-defined]
