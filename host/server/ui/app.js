// The Weir console: a hash router over four pages, polling the public API
// while a page is shown and the tab is visible.
import { token, setToken, get, UNREACHABLE } from "./api.js";
import { jobsPage } from "./jobs.js";
import { jobPage } from "./job.js";
import { pluginsPage } from "./plugins.js";
import { savepointsPage } from "./savepoints.js";

const view = document.getElementById("view");
const banner = document.getElementById("banner");
let generation = 0;
let refreshers = [];

function say(message, kind) {
  if (!message) {
    banner.hidden = true;
    return;
  }
  banner.hidden = false;
  banner.className = kind || "";
  banner.textContent = message;
}

// Runs `tick` now and every `ms` until the page changes (or it returns
// "stop"); a failed tick shows its error in the banner and is retried.
function poll(ms, tick) {
  const mine = generation;
  let timer = null;
  const run = async () => {
    clearTimeout(timer);
    if (mine !== generation) return;
    try {
      const r = await tick();
      if (mine !== generation) return;
      say(null);
      if (r === "stop") return;
    } catch (e) {
      if (mine !== generation) return;
      say(e.code === UNREACHABLE ? `${e.message} Retrying every ${ms / 1000} s…` : e.message);
    }
    timer = setTimeout(() => (document.hidden ? document.addEventListener("visibilitychange", run, { once: true }) : run()), ms);
  };
  refreshers.push(run);
  run();
}

const ctx = {
  poll,
  go(hash) { location.hash = hash; },
  refresh() { refreshers.forEach((r) => r()); },
};

function route() {
  generation++;
  refreshers = [];
  say(null);
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const section = parts[0] || "jobs";
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.section === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (section === "jobs" && parts[1]) {
    document.title = `Job ${parts[1].slice(0, 8)} · Weir`;
    jobPage(view, ctx, parts[1]);
  } else if (section === "plugins") {
    document.title = "Plugins · Weir";
    pluginsPage(view, ctx);
  } else if (section === "savepoints") {
    document.title = "Savepoints · Weir";
    savepointsPage(view, ctx);
  } else {
    document.title = "Jobs · Weir";
    jobsPage(view, ctx);
  }
}

const form = document.getElementById("token-form");
const input = document.getElementById("token");
const state = document.getElementById("token-state");
function showToken() {
  state.textContent = token() ? "set for this session" : "not set: actions need it";
}
form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  setToken(input.value.trim());
  input.value = "";
  showToken();
  ctx.refresh();
});
showToken();
window.addEventListener("hashchange", route);
route();
// The server's health, once: a clear word when it is not there at all.
get("/api/v1/health").catch((e) => say(e.message));
