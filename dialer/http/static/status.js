// The status page: reads the daemon's JSON API every few seconds and renders it.
// Every text from the API (campaign names, reasons, numbers) goes in with textContent only;
// the structure comes from the <template> elements of status.html. The session cookie
// authenticates the requests; a POST also sends X-Outreach-Page, which the API requires of a
// cookie-authenticated POST (a form posted from another site cannot send it).
"use strict";

const REFRESH_MS = 3000;
const DEAD_SHOWN = 10;
const PAGE_HEADER = { "X-Outreach-Page": "1" };

const state = {
  lastOk: null, // Date of the last refresh that fully succeeded
  cards: new Map(), // campaign name -> its <article>
  timer: null,
};

// -- small helpers -----------------------------------------------------------------------------

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) tr.append(cell);
  return tr;
}

function formatAge(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

function formatTime(iso) {
  if (!iso) return "–";
  const when = new Date(iso);
  const today = new Date();
  const time = when.toLocaleTimeString([], { hour12: false });
  if (when.toDateString() === today.toDateString()) return time;
  return `${when.toLocaleDateString()} ${time}`;
}

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// GET or POST the API; a JSON body back, or an HttpError naming what went wrong.
// `acceptStatus` lists non-2xx statuses whose JSON body is an answer (/readyz's 503).
async function api(path, { method = "GET", acceptStatus = [] } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method,
      credentials: "same-origin",
      cache: "no-store",
      headers: method === "GET" ? {} : PAGE_HEADER,
    });
  } catch (error) {
    throw new HttpError(0, `no connection (${error.message})`);
  }
  if (response.status === 401) {
    window.location.assign("/"); // logged out, or the token changed: back to the login form
    throw new HttpError(401, "not logged in");
  }
  let body = null;
  try {
    body = await response.json();
  } catch (error) {
    throw new HttpError(response.status, `${path} answered ${response.status}, not JSON`);
  }
  if (!response.ok && !acceptStatus.includes(response.status)) {
    const why = body && body.error ? body.error : `HTTP ${response.status}`;
    throw new HttpError(response.status, `${path}: ${why}`);
  }
  return body;
}

// -- the banner and the refresh time -------------------------------------------------------------

function showProblems(problems) {
  const banner = document.getElementById("banner");
  if (problems.length === 0) {
    banner.hidden = true;
    banner.textContent = "";
    return;
  }
  const since = state.lastOk ? t("banner.since", { time: formatTime(state.lastOk.toISOString()) }) : "";
  const unique = [...new Set(problems)];
  banner.textContent = t("banner.down", { problems: unique.join("; ") }) + since;
  banner.hidden = false;
}

function tick() {
  const shown = document.getElementById("refreshed");
  if (state.lastOk) {
    const ago = (Date.now() - state.lastOk.getTime()) / 1000;
    shown.textContent = t("refreshed.at", { time: formatTime(state.lastOk.toISOString()), age: formatAge(ago) });
    shown.classList.toggle("stale", ago * 1000 > 3 * REFRESH_MS);
  }
  for (const cell of document.querySelectorAll("[data-age-s]")) {
    const age = Number(cell.dataset.ageS) + (Date.now() - Number(cell.dataset.readAt)) / 1000;
    cell.textContent = formatAge(age);
  }
}

// -- the PBX link and the store ------------------------------------------------------------------

function renderReadiness(ready) {
  const checks = (ready && ready.checks) || {};
  setPill(document.getElementById("ami"), "AMI", checks.ami, t("pill.loggedIn"), t("pill.down"));
  setPill(document.getElementById("store"), t("pill.store"), checks.store, t("pill.reachable"), t("pill.unreachable"));
}

// A green or red pill; the check's detail beside it when it fails (whole in the tooltip).
function setPill(pill, label, check, upWord, downWord) {
  const detail = document.getElementById(`${pill.id}-detail`);
  if (!check) {
    pill.className = "pill pill-unknown";
    pill.dataset.state = "unknown";
    pill.textContent = `${label}: ${t("pill.unknown")}`;
    pill.title = detail.textContent = detail.title = "";
    return;
  }
  pill.className = check.ok ? "pill pill-up" : "pill pill-down";
  pill.dataset.state = check.ok ? "up" : "down";
  pill.textContent = `${label}: ${check.ok ? upWord : downWord}`;
  pill.title = check.detail || "";
  detail.textContent = detail.title = check.ok ? "" : check.detail || "";
}

// -- campaigns -----------------------------------------------------------------------------------

function cardFor(name) {
  let card = state.cards.get(name);
  if (card) return card;
  const template = document.getElementById("campaign-template");
  card = template.content.firstElementChild.cloneNode(true);
  card.dataset.campaign = name;
  card.querySelector(".campaign-name").textContent = name;
  card.querySelector(".campaign-pause").addEventListener("click", () => pauseOrResume(name, "pause"));
  card.querySelector(".campaign-resume").addEventListener("click", () => pauseOrResume(name, "resume"));
  state.cards.set(name, card);
  return card;
}

function renderCampaigns(campaigns) {
  const holder = document.getElementById("campaigns");
  if (campaigns.length === 0) {
    holder.replaceChildren(el("p", t("campaigns.none"), "muted"));
    state.cards.clear();
    return;
  }
  const names = new Set(campaigns.map((c) => c.name));
  for (const name of [...state.cards.keys()]) {
    if (!names.has(name)) state.cards.delete(name);
  }
  const cards = campaigns.map((campaign) => {
    const card = cardFor(campaign.name);
    renderCampaign(card, campaign);
    return card;
  });
  // Re-append only when the order or set changed, so that a button being clicked stays put.
  const current = [...holder.children];
  if (current.length !== cards.length || current.some((node, i) => node !== cards[i])) {
    holder.replaceChildren(...cards);
  }
}

function renderCampaign(card, c) {
  const contacts = c.contacts || {};
  // Calls this worker follows, or (the campaign dials on another worker) those in the store.
  const inFlight = Math.min(
    Math.max(c.calls_in_flight || 0, c.attempts_in_flight || 0),
    contacts.dialling || 0,
  );
  // Contacts claimed but not yet dialled (waiting for a free line) count as due.
  const parts = {
    done: contacts.done || 0,
    failed: (contacts.failed || 0) + (contacts.cancelled || 0),
    "in-flight": inFlight,
    due: (contacts.pending || 0) + (contacts.dialling || 0) - inFlight,
  };
  const total = Object.values(parts).reduce((a, b) => a + b, 0);

  const where = c.worker ? ` · ${t("campaign.worker", { worker: c.worker })}` : "";
  card.querySelector(".campaign-kind").textContent = c.kind.replace(/_/g, " ") + where;
  const badge = card.querySelector(".campaign-state");
  badge.textContent = c.state;
  badge.className = `badge campaign-state state-${c.state}`;
  card.classList.toggle("is-paused", c.state === "paused");
  const pause = card.querySelector(".campaign-pause");
  const resume = card.querySelector(".campaign-resume");
  pause.hidden = c.state !== "running";
  resume.hidden = c.state !== "paused";
  if (!card.dataset.busy) pause.disabled = resume.disabled = c.state === "disabled";

  for (const [key, count] of Object.entries(parts)) {
    card.querySelector(`.seg-${key}`).style.width = total ? `${(100 * count) / total}%` : "0";
    card.querySelector(`.count-${key}`).textContent = count;
  }
  card.querySelector(".count-total").textContent = total;
  card.querySelector(".progress").setAttribute(
    "aria-label",
    `${parts.done} done, ${parts.failed} failed, ${parts["in-flight"]} in flight, ${parts.due} due`,
  );

  card.querySelector(".fact-calls").textContent = t("campaign.lines", { calls: c.calls_in_flight, max: c.max_concurrent_calls });
  card.querySelector(".fact-cps").textContent = t("campaign.atMost", { cps: c.max_calls_per_second });
  card.querySelector(".fact-next-due").textContent = nextDue(c);
  const agentsRow = card.querySelector(".fact-agents-row");
  agentsRow.hidden = c.free_agents === undefined;
  card.querySelector(".fact-agents").textContent = c.free_agents ?? "";
  fillPacing(card, c.pacing);

  fillCounts(card.querySelector(".campaign-outcomes tbody"), c.attempts || {}, c.attempts_in_flight, t("campaign.noAttempt"));
  fillCounts(card.querySelector(".campaign-dispositions tbody"), c.dispositions || {}, 0, t("campaign.noneRecorded"));

  const live = card.querySelector(".campaign-live tbody");
  const readAt = String(Date.now());
  const rows = (c.live_calls || []).map((call) => {
    const age = el("td", formatAge(call.age_s), "num live-age");
    age.dataset.ageS = String(call.age_s);
    age.dataset.readAt = readAt;
    return row([
      el("td", call.phone, "live-phone"),
      el("td", call.stage.replace(/_/g, " "), `live-stage stage-${call.stage}`),
      age,
      el("td", formatTime(call.started_at)),
    ]);
  });
  if (rows.length === 0) {
    const empty = el("td", t("live.none"), "muted");
    empty.colSpan = 4;
    rows.push(row([empty]));
  }
  live.replaceChildren(...rows);
}

function nextDue(c) {
  if (!c.next_due_at) return t("campaign.nothingDue");
  if (c.state !== "running") return `${formatTime(c.next_due_at)} (${c.state})`;
  return new Date(c.next_due_at) <= new Date() ? t("campaign.now") : formatTime(c.next_due_at);
}

function fillCounts(tbody, counts, inFlight, emptyText) {
  const rows = Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .map(([key, count]) => row([el("td", key.replace(/_/g, " "), `outcome-${key}`), el("td", count, "num")]));
  if (inFlight) rows.push(row([el("td", t("campaign.inFlight"), "muted"), el("td", inFlight, "num")]));
  if (rows.length === 0) {
    const empty = el("td", emptyText, "muted");
    empty.colSpan = 2;
    rows.push(row([empty]));
  }
  tbody.replaceChildren(...rows);
}

async function pauseOrResume(name, action) {
  const card = state.cards.get(name);
  const buttons = card.querySelectorAll("button");
  card.dataset.busy = "1";
  for (const button of buttons) button.disabled = true;
  try {
    const status = await api(`/v1/campaigns/${encodeURIComponent(name)}/${action}`, { method: "POST" });
    delete card.dataset.busy;
    renderCampaign(card, status);
    showProblems([]);
  } catch (error) {
    delete card.dataset.busy;
    for (const button of buttons) button.disabled = false;
    showProblems([`${action} ${name} failed: ${error.message}`]);
  }
}

// -- SMS ---------------------------------------------------------------------------------------

function renderFunnel(funnel) {
  const table = document.getElementById("funnel");
  const head = row([el("th", t("sms.stage")), ...funnel.statuses.map((s) => el("th", s, "num")), el("th", t("sms.total"), "num")]);
  table.tHead.replaceChildren(head);
  const rows = funnel.stages.map((stage) =>
    row([
      el("th", stage.stage.replace(/_/g, " "), "stage-name"),
      ...funnel.statuses.map((status) => {
        const count = stage.counts[status] || 0;
        const cell = el("td", count, `num status-${status}${count ? "" : " zero"}`);
        cell.dataset.status = status;
        return cell;
      }),
      el("td", stage.total, "num total"),
    ]),
  );
  if (rows.length === 0) {
    const empty = el("td", t("sms.none"), "muted");
    empty.colSpan = funnel.statuses.length + 2;
    rows.push(row([empty]));
  }
  table.tBodies[0].replaceChildren(...rows);
  for (const [i, stage] of funnel.stages.entries()) table.tBodies[0].rows[i].dataset.stage = stage.stage;
}

function renderDead(dead) {
  const rows = dead.slice(0, DEAD_SHOWN).map((message) =>
    row([
      el("td", formatTime(message.dead_at)),
      el("td", message.order_id),
      el("td", message.stage.replace(/_/g, " ")),
      el("td", message.phone),
      el("td", message.reason || "–", "reason"),
      el("td", message.error_code || "–"),
      el("td", message.attempts, "num"),
    ]),
  );
  if (rows.length === 0) {
    const empty = el("td", t("dead.none"), "muted");
    empty.colSpan = 7;
    rows.push(row([empty]));
  }
  document.querySelector("#dead tbody").replaceChildren(...rows);
}

// -- the refresh loop ----------------------------------------------------------------------------

async function refresh() {
  const parts = [
    ["/readyz", renderReadiness, [503]],
    ["/v1/campaigns", (body) => renderCampaigns(body.campaigns), []],
    ["/v1/sms/funnel", renderFunnel, []],
    [`/v1/sms/dead?limit=${DEAD_SHOWN}`, (body) => renderDead(body.dead), []],
  ];
  const results = await Promise.allSettled(parts.map(([path, , acceptStatus]) => api(path, { acceptStatus })));
  const problems = [];
  results.forEach((result, i) => {
    if (result.status === "fulfilled") {
      parts[i][1](result.value);
    } else {
      problems.push(result.reason.message);
    }
  });
  if (problems.length === 0) state.lastOk = new Date();
  showProblems(problems);
  if (results.every((r) => r.status === "rejected")) {
    renderReadiness(null); // nothing answered: the link state is unknown, not what it was
  }
  document.body.dataset.refreshed = String(Date.now());
  tick();
}

async function loop() {
  try {
    await refresh();
  } finally {
    state.timer = setTimeout(loop, REFRESH_MS);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  // Another language: the cards are made again from their (reworded) template.
  i18n.listeners.push(() => {
    state.cards.clear();
    refresh();
  });
  setInterval(tick, 1000);
  loop();
});

// Outbound campaigns: the pacing in force (and a fall-back to progressive), the abandon rate
// over the rule's window, and the agent measures.
function fillPacing(card, pacing) {
  for (const rowEl of card.querySelectorAll(".fact-pacing-row")) rowEl.hidden = !pacing;
  if (!pacing) return;
  const percent = (value) => (value === null || value === undefined ? "–" : `${(100 * value).toFixed(1)}%`);
  const fellBack = pacing.fell_back ? ` — fell back to progressive: abandon cap reached` : "";
  card.querySelector(".fact-pacing").textContent = `${pacing.mode}${fellBack}`;
  card.querySelector(".fact-pacing").classList.toggle("is-warning", pacing.fell_back);
  const rule = pacing.abandon_rule;
  card.querySelector(".fact-abandon").textContent =
    `${percent(rule.abandon_rate)} of answered over ${Math.round(rule.window_s / 3600)} h (cap ${percent(rule.max_rate)})`;
  const idle = pacing.agent_idle_s_mean === null ? "–" : `${pacing.agent_idle_s_mean} s`;
  card.querySelector(".fact-occupancy").textContent =
    `${pacing.agents_on_duty} on duty, ${percent(pacing.occupancy)} busy, idle ${idle} between calls, answer rate ${percent(pacing.answer_rate)}`;
  card.querySelector(".fact-per-hour").textContent =
    `${pacing.calls_per_agent_hour ?? "–"} calls, ${pacing.connects_per_agent_hour ?? "–"} connects`;
}
