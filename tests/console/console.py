"""The web console in a real browser (Debian's Chromium, driven by Playwright).

Run by tests/all/console.rs against a `weir serve` it started on 127.0.0.1:
`python console.py journey|errors`, with WEIR_URL, WEIR_TOKEN, WEIR_JOB,
WEIR_ARTIFACTS (screenshots) and, per mode, more below. Every step asserts
what the page shows; a failed step saves a screenshot and exits non-zero.
"""

import json
import os
import re
import sys
import urllib.request

from playwright.sync_api import expect, sync_playwright

URL = os.environ["WEIR_URL"]
TOKEN = os.environ["WEIR_TOKEN"]
ARTIFACTS = os.environ["WEIR_ARTIFACTS"]
CHROMIUM = os.environ.get("WEIR_CHROMIUM", "/usr/bin/chromium")
# The flags a closed network needs: no background connections, no sandbox as root.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
expect.set_options(timeout=30_000)


def shot(page, name):
    page.screenshot(path=os.path.join(ARTIFACTS, f"{name}.png"), full_page=True)


def api(path):
    with urllib.request.urlopen(f"{URL}{path}") as r:
        return json.load(r)


def set_token(page, token):
    page.fill("#token", token)
    page.click("#token-form button")
    expect(page.locator("#token-state")).to_have_text("set for this session")


def journey(page):
    job = os.environ["WEIR_JOB"]
    plugin = os.environ["WEIR_PLUGIN"]
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # (The one refusal this journey provokes, a 401, is logged by the browser too.)
    page.on("console", lambda m: m.type == "error" and "status of 401" not in m.text and errors.append(m.text))

    # The jobs list names the running job; its link opens its page.
    page.goto(f"{URL}/")
    row = page.locator(f'tr[data-job="{job}"]')
    expect(row).to_contain_text("sensor-averages")
    expect(row).to_contain_text("running")
    expect(row.locator("td").nth(3)).not_to_have_text("0")
    shot(page, "jobs")
    row.get_by_role("link").click()
    expect(page).to_have_url(f"{URL}/#/jobs/{job}")

    # The graph: four nodes, the chained forward edge, the keyed shuffle.
    for node in ["readings", "celsius", "averages", "out"]:
        expect(page.locator(f'.dag g[data-node="{node}"]')).to_be_visible()
    expect(page.locator('.dag g[data-edge="celsius->averages"] text')).to_have_text("hash(key)")
    expect(page.locator('.dag g[data-edge="readings->celsius"] path')).to_have_class(re.compile("chained"))
    expect(page.locator('.dag g[data-node="averages"]')).to_contain_text("sensor-average@1.0.0")
    # Live, non-zero rates, in the graph and in the nodes table.
    expect(page.locator('.dag g[data-node="readings"]')).to_contain_text(re.compile(r"out [1-9][0-9.]* ?k?/s"))
    expect(page.locator('tr[data-node="averages"] td').nth(5)).not_to_have_text("0")
    expect(page.locator('tr[data-node="celsius"]')).to_contain_text("memory 256.0 MiB")
    expect(page.locator("table[aria-label=Checkpoints] tbody tr").first).to_contain_text("completed")
    expect(page.locator(".chart figcaption").first).to_contain_text("Records per second: in")
    shot(page, "job")

    # An action without the token is refused with the API's words.
    page.click("#savepoint")
    expect(page.locator(".result.error").first).to_contain_text("this call needs `Authorization: Bearer <token>`")

    # With it, from the keyboard: a savepoint, then listed with its lineage.
    set_token(page, TOKEN)
    page.focus("#savepoint")
    page.keyboard.press("Enter")
    taken = page.locator(".result.ok").first
    expect(taken).to_contain_text(re.compile(r"Savepoint savepoint-\S+ taken at checkpoint \d+"))
    name = re.search(r"Savepoint (\S+) taken", taken.inner_text()).group(1)
    page.click("nav >> text=Savepoints")
    expect(page.locator(f'li[data-savepoint="{name}"]')).to_contain_text("averages: sensor-average@1.0.0")
    shot(page, "savepoints")

    # Upload a new version from the browser.
    page.click("nav >> text=Plugins")
    expect(page.locator('tr[data-plugin="sensor-average@1.0.0"]')).to_contain_text(job[:8])
    page.set_input_files("#plugin-file", plugin)
    page.fill("#plugin-name", "sensor-average")
    page.fill("#plugin-version", "2.0.0")
    page.click("form[aria-labelledby=upload-title] button")
    expect(page.locator(".result.ok")).to_contain_text("Uploaded sensor-average@2.0.0 (operator")
    expect(page.locator('tr[data-plugin="sensor-average@2.0.0"]')).to_contain_text("operator")
    shot(page, "plugins")

    # Upgrade the node to it (hot swap) and see the result.
    page.go_back()
    page.go_back()
    expect(page).to_have_url(f"{URL}/#/jobs/{job}")
    page.select_option("#upgrade-node", "averages")
    expect(page.locator("#upgrade-version option[value='sensor-average@2.0.0']")).to_have_count(1)
    page.select_option("#upgrade-version", "sensor-average@2.0.0")
    page.click("form[aria-labelledby=upgrade-title] button")
    expect(page.locator("form[aria-labelledby=upgrade-title] .result.ok")).to_contain_text(
        re.compile(r"Upgraded averages from sensor-average@1\.0\.0 to sensor-average@2\.0\.0 at checkpoint \d+"))
    expect(page.locator('tr[data-node="averages"]')).to_contain_text("sensor-average@2.0.0")
    expect(page.locator("table[aria-label='Version history'] tbody tr").first).to_contain_text("upgraded")
    shot(page, "upgraded")

    # Cancel it.
    page.click("#cancel")
    expect(page.locator(".result.ok").first).to_contain_text("Job sensor-averages is cancelled.")
    expect(page.locator("h1 .state")).to_have_text("cancelled")
    assert api(f"/api/v1/jobs/{job}")["state"] == "cancelled"
    shot(page, "cancelled")

    # Fork A/B from the savepoint: one job per version, each linked.
    page.click("nav >> text=Savepoints")
    page.select_option("#fork-savepoint", name)
    page.fill("#fork-node", "averages")
    page.fill("#fork-a", "sensor-average@1.0.0")
    page.fill("#fork-b", "sensor-average@2.0.0")
    page.click("form[aria-labelledby=fork-title] button")
    forked = page.locator("form[aria-labelledby=fork-title] .result.ok")
    expect(forked).to_contain_text("Started a: sensor-averages-a b: sensor-averages-b")
    forks = {a.inner_text(): a.get_attribute("href") for a in forked.get_by_role("link").all()}
    for label, version in [("a", "1.0.0"), ("b", "2.0.0")]:
        fork = api("/api/v1/jobs/" + forks[f"{label}: sensor-averages-{label}"].split("/")[-1])
        assert fork["plugins"]["averages"]["version"] == version, fork
    shot(page, "forked")

    # Stop fork b at a savepoint: it ends `stopped`, its savepoint under the one it forked from.
    forked.get_by_role("link", name="b: sensor-averages-b").click()
    expect(page.locator("h1")).to_contain_text("sensor-averages-b")
    expect(page.locator('.dag g[data-node="averages"]')).to_contain_text("sensor-average@2.0.0")
    page.click("#stop")
    expect(page.locator(".result.ok").first).to_contain_text(re.compile(r"Stopped at savepoint \S+\."))
    stopped = re.search(r"savepoint (\S+)\.", page.locator(".result.ok").first.inner_text()).group(1)
    expect(page.locator("h1 .state")).to_have_text("stopped")
    expect(page.locator("#job-actions")).to_be_hidden()
    page.click("nav >> text=Savepoints")
    expect(page.locator(f'li[data-savepoint="{name}"] li[data-savepoint="{stopped}"]')).to_contain_text(
        "averages: sensor-average@2.0.0")

    # Phone width: the page reflows, nothing but tables scrolls sideways.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{URL}/#/jobs")
    expect(page.locator(f'tr[data-job="{job}"]')).to_contain_text("cancelled")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "the page is wider than a phone"
    shot(page, "jobs-phone")
    assert not errors, f"the page logged errors: {errors}"


def errors(page):
    failed = os.environ["WEIR_FAILED_JOB"]
    # A job that failed says so, with its cause.
    page.goto(f"{URL}/#/jobs/{failed}")
    notice = page.locator(".notice.failed")
    expect(notice).to_contain_text("This job failed: plugin_trapped")
    expect(notice).to_contain_text("task trap-0/1 failed: plugin trapped in `process`")
    shot(page, "failed-job")

    # No such job.
    page.goto(f"{URL}/#/jobs/nope")
    expect(page.locator("h1")).to_have_text("No such job")
    expect(page.locator(".notice.failed")).to_have_text("there is no job nope (weir job list shows the jobs)")

    # A wrong token: the action is refused, the API's message shown.
    page.goto(f"{URL}/#/jobs/{os.environ['WEIR_JOB']}")
    set_token(page, "wrong")
    page.click("#savepoint")
    expect(page.locator(".result.error").first).to_contain_text(
        "the token is wrong: use the one in the server's data dir (`token`) or --token-file")

    # A malformed spec: the error, and the line it names marked.
    set_token(page, TOKEN)
    page.goto(f"{URL}/#/jobs")
    page.fill("#spec", "name: x\nsources: []\nsinks: []\nparalelism: 2\n")
    page.click("form[aria-labelledby=submit-title] button[type=submit]")
    expect(page.locator(".result.error")).to_contain_text("spec_invalid: ")
    expect(page.locator(".result.error")).to_contain_text("unknown field `paralelism`")
    expect(page.locator(".lines code.bad")).to_have_text("paralelism: 2")
    shot(page, "spec-error")

    # The server goes away: the page says so instead of going blank.
    page.goto(f"{URL}/#/jobs/{os.environ['WEIR_JOB']}")
    expect(page.locator(".dag g[data-node=readings]")).to_be_visible()
    print("ready to stop the server", flush=True)
    sys.stdin.readline()
    expect(page.locator("#banner")).to_contain_text("Cannot reach the Weir server at")
    expect(page.locator("#banner")).to_contain_text("Is `weir serve` still running?")
    expect(page.locator(".dag g[data-node=readings]")).to_be_visible()
    shot(page, "unreachable")


def watch(page):
    """For the benchmark: keeps each job page given on stdin open (polling,
    as a person watching it would) until the job has finished."""
    page.goto(f"{URL}/#/jobs")
    expect(page.locator("h1")).to_have_text("Jobs")
    print("ready", flush=True)
    for line in sys.stdin:
        job = line.strip()
        page.goto(f"{URL}/#/jobs/{job}")
        expect(page.locator("h1 .state")).to_have_text("finished", timeout=600_000)
        print("finished", flush=True)


def main():
    mode = sys.argv[1]
    os.makedirs(ARTIFACTS, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        try:
            {"journey": journey, "errors": errors, "watch": watch}[mode](page)
        except Exception:
            shot(page, f"{mode}-failure")
            raise
        finally:
            browser.close()
    print(f"{mode}: ok")


if __name__ == "__main__":
    main()
