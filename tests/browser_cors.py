"""The README's browser example in a real browser: a page on one origin calls ``POST /woocommerce/connect``
on shopsync's web process (another origin) with a bearer token, the way the README shows. Headless Chromium
runs the page; the script prints what the page saw. ``make browser-check`` (needs ``chromium``: Debian's
package; not part of CI, where tests/test_cors.py checks the same headers over HTTP).

Expected: with the page's origin in SHOPSYNC_CORS_ORIGINS the page reads shopsync's answer (here a 401: the
token is made up) — without it, the browser blocks the call (``TypeError: Failed to fetch``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile

from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from sandbox.serving import serve_app
from tests.platform_world import free_port
from worker.config import Settings
from worker.sealing import generate_key_spec
from worker.web.app import create_app

PAGE = """<!doctype html><html><body><pre id="out">pending</pre><script>
fetch('%(api)s/woocommerce/connect', {
  method: 'POST',
  headers: { 'Content-Type': 'application/json', Authorization: 'Bearer not-a-real-token' },
  body: JSON.stringify({ organization_id: '00000000-0000-0000-0000-000000000000', store_url: 'https://shop.example',
                         consumer_key: 'ck_x', consumer_secret: 'cs_x' }),
}).then(async r => { document.getElementById('out').textContent = 'status ' + r.status + ' ' + (await r.text()) })
  .catch(e => { document.getElementById('out').textContent = 'blocked: ' + e })
</script></body></html>"""


def page_result(allow: bool) -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("chromium is not installed (apt-get install chromium)")
    api_port, page_port = free_port(), free_port()
    page_origin = f"http://127.0.0.1:{page_port}"
    settings = Settings(_env_file=None, database_url="postgresql://nobody@127.0.0.1:1/none",  # type: ignore[call-arg]
                        sealing_keys=generate_key_spec("b"), supabase_jwt_secret="b" * 40,
                        cors_origins=[page_origin] if allow else [])
    page = Starlette(routes=[Route("/", lambda _r: HTMLResponse(PAGE % {"api": f"http://127.0.0.1:{api_port}"}))])
    with serve_app(create_app(settings), port=api_port, name="shopsync-web"), \
            serve_app(page, port=page_port, name="page"), tempfile.TemporaryDirectory() as profile:
        out = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
                              "--virtual-time-budget=10000", "--dump-dom", f"{page_origin}/"],
                             capture_output=True, text=True, timeout=120, check=False).stdout
    start = out.find('<pre id="out">')
    return out[start + len('<pre id="out">'):out.find("</pre>", start)] if start >= 0 else out[-300:]


def main() -> int:
    allowed, refused = page_result(True), page_result(False)
    print(f"origin allowed:     {allowed}")
    print(f"origin not allowed: {refused}")
    ok = allowed.startswith("status 401") and refused.startswith("blocked")
    print("OK: the page reads shopsync's answer only when its origin is allowed" if ok else "UNEXPECTED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
