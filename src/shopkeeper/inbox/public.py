"""The public CSAT page a survey link opens: five buttons, the answer recorded only on POST (a
mail scanner following the link answers nothing). No login: the signed token is the key."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from shopkeeper import clock
from shopkeeper.errors import ShopkeeperError
from shopkeeper.inbox.csat import conversation_for_token, record_answer
from shopkeeper.runtime import get_runtime

router = APIRouter(include_in_schema=False)
_HEADERS = {"Cache-Control": "no-store, private", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#1a1a1a}"
    "button{font-size:1.25rem;min-width:3rem;margin:.2rem;padding:.5rem;border:1px solid #555;border-radius:.4rem;"
    "background:#fff;cursor:pointer}button:focus{outline:3px solid #1a56db}textarea{width:100%;min-height:5rem}"
)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        f"<!doctype html><html lang='en'><meta charset='utf-8'><meta name='viewport' content='width=device-width'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style><main><h1>{escape(title)}</h1>{body}</main></html>"
    )
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def _form(token: str, workspace_name: str, chosen: int | None) -> str:
    buttons = "".join(
        f"<button type='submit' name='score' value='{n}' aria-pressed='{str(n == chosen).lower()}'"
        f" aria-label='{n} of 5'>{n}</button>"
        for n in range(1, 6)
    )
    return (
        f"<p>How satisfied were you with {escape(workspace_name)}'s answer? 1 is poor, 5 is great.</p>"
        f"<form method='post' action='/c/csat/{escape(token)}'>"
        "<label for='comment'>Anything to add? (optional)</label><br>"
        "<textarea id='comment' name='comment' maxlength='2000'></textarea>"
        f"<div role='group' aria-label='Score'>{buttons}</div></form>"
    )


@router.get("/c/csat/{token}")
def show(request: Request, token: str) -> HTMLResponse:
    try:
        with get_runtime(request).db.session() as session:
            workspace, conversation = conversation_for_token(session, token)
            if conversation.csat_score is not None:
                return _page("Thank you", f"<p>You rated this conversation {conversation.csat_score} of 5.</p>")
            return _page("How did we do?", _form(token, workspace.name, None))
    except ShopkeeperError as exc:
        return _page("This link does not work", f"<p>{escape(exc.message)}.</p>", exc.status)


@router.post("/c/csat/{token}")
async def answer(request: Request, token: str) -> HTMLResponse:
    try:
        form = await request.form()
    except (HTTPException, MultiPartException):
        return _page("That did not work", "<p>Send the form from the survey page.</p>", 400)
    score, comment = form.get("score"), form.get("comment")
    try:
        with get_runtime(request).db.session(write=True) as session:
            workspace, conversation = conversation_for_token(session, token)
            record_answer(
                session, workspace, conversation, score, comment if isinstance(comment, str) else None, clock.now()
            )
    except ShopkeeperError as exc:
        return _page("That did not work", f"<p>{escape(exc.message)}.</p>", exc.status)
    return _page("Thank you", "<p>Your answer helps us do better.</p>")
