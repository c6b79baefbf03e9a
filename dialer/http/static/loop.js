// The status page's search box (the timeline of a number: GET /v1/contacts/{phone}/timeline)
// and the charts of the last 24 hours (GET /v1/trends), drawn here as inline SVG: no library,
// nothing from the internet. Texts go in with textContent only. Uses api(), el(), row() and
// formatTime() of status.js and t() of i18n.js.
"use strict";

const TRENDS_REFRESH_MS = 60000;
const CHART_W = 240;
const CHART_H = 60;

const loopState = { phone: null, entries: [], trends: null };

// -- the timeline of a number ------------------------------------------------------------------

async function searchTimeline(event) {
  event.preventDefault();
  const phone = document.getElementById("timeline-phone").value.trim();
  if (!phone) return;
  loopState.phone = phone;
  const message = document.getElementById("timeline-message");
  try {
    const body = await api(`/v1/contacts/${encodeURIComponent(phone)}/timeline`, { acceptStatus: [422] });
    if (body.fields) {
      loopState.entries = [];
      renderTimeline(null, t("timeline.invalid", { why: body.fields[0].message }));
      return;
    }
    loopState.entries = body.entries;
    loopState.phone = body.phone;
    renderTimeline(body.phone);
  } catch (error) {
    message.textContent = error.message;
  }
}

function renderTimeline(phone, problem) {
  const message = document.getElementById("timeline-message");
  const table = document.getElementById("timeline");
  if (problem) {
    message.textContent = problem;
    message.classList.add("error");
    table.hidden = true;
    return;
  }
  message.classList.remove("error");
  const entries = loopState.entries;
  message.textContent = entries.length
    ? t("timeline.found", { count: entries.length, phone })
    : t("timeline.empty", { phone });
  table.hidden = entries.length === 0;
  const rows = entries.map((entry) => {
    const until = entry.until ? ` (${t("timeline.until", { time: formatTime(entry.until) })})` : "";
    const tr = row([
      el("td", formatTime(entry.at)),
      el("td", kindName(entry.kind), "timeline-kind"),
      el("td", entry.campaign || "–"),
      el("td", entry.order_id || "–"),
      el("td", `${entry.reason || ""}${until}`, "timeline-reason"),
    ]);
    tr.dataset.kind = entry.kind;
    return tr;
  });
  table.tBodies[0].replaceChildren(...rows);
}

// -- the charts of the last 24 hours -------------------------------------------------------------

// SVG elements in the namespace of the template's <svg> (the HTML parser gave it its own).
function svgNode(tag, attributes) {
  const svgNamespace = document.getElementById("trend-template").content.querySelector("svg").namespaceURI;
  const node = document.createElementNS(svgNamespace, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

// One small chart: a bar per hour (counts) or a line (a rate from 0 to 1; null: no call).
function chart(title, values, { rate = false, key = "" } = {}) {
  const figure = document.getElementById("trend-template").content.firstElementChild.cloneNode(true);
  figure.dataset.series = key;
  figure.querySelector(".trend-title").textContent = title;
  const svg = figure.querySelector(".trend-chart");
  const known = values.filter((v) => v !== null);
  const top = rate ? 1 : Math.max(1, ...known);
  const step = CHART_W / values.length;
  svg.append(svgNode("line", { x1: 0, y1: CHART_H - 0.5, x2: CHART_W, y2: CHART_H - 0.5, class: "trend-axis" }));
  if (rate) {
    const points = values
      .map((v, i) => (v === null ? null : `${(i + 0.5) * step},${CHART_H - (v / top) * (CHART_H - 4)}`))
      .filter(Boolean);
    if (points.length) svg.append(svgNode("polyline", { points: points.join(" "), class: "trend-line" }));
    for (const point of points) {
      const [cx, cy] = point.split(",");
      svg.append(svgNode("circle", { cx, cy, r: 1.5, class: "trend-point" }));
    }
  } else {
    values.forEach((v, i) => {
      const height = (v / top) * (CHART_H - 4);
      const bar = svgNode("rect", { x: i * step + 1, y: CHART_H - height, width: Math.max(1, step - 2), height, class: "trend-bar" });
      bar.append(svgNode("title", {}));
      bar.lastChild.textContent = String(v);
      svg.append(bar);
    });
  }
  const total = known.reduce((a, b) => a + b, 0);
  const summary = rate
    ? t("trends.rate", { rate: known.length ? `${Math.round((100 * total) / known.length)}%` : "–" })
    : t("trends.total", { total });
  figure.querySelector(".trend-total").textContent = summary;
  figure.querySelector(".trend-total").dataset.total = rate ? "" : String(total);
  svg.setAttribute("aria-label", `${title}: ${summary}`);
  return figure;
}

function renderTrends() {
  const trends = loopState.trends;
  if (!trends) return;
  const holder = document.getElementById("trends");
  const charts = [];
  for (const [name, counts] of Object.entries(trends.calls)) {
    charts.push(chart(t("trends.calls", { name }), counts.calls, { key: `calls:${name}` }));
    charts.push(chart(t("trends.answerRate", { name }), counts.answer_rate, { rate: true, key: `answer_rate:${name}` }));
    charts.push(chart(t("trends.abandoned", { name }), counts.abandoned, { key: `abandoned:${name}` }));
  }
  for (const [name, counts] of Object.entries(trends.sms)) {
    const shown = name.replace(/_/g, " ");
    charts.push(chart(t("trends.sent", { name: shown }), counts.sent, { key: `sent:${name}` }));
    charts.push(chart(t("trends.delivered", { name: shown }), counts.delivered, { key: `delivered:${name}` }));
  }
  holder.replaceChildren(...(charts.length ? charts : [el("p", t("trends.none"), "muted")]));
}

async function refreshTrends() {
  try {
    loopState.trends = await api("/v1/trends?hours=24");
    renderTrends();
  } catch (error) {
    document.getElementById("trends").replaceChildren(el("p", error.message, "muted"));
  } finally {
    setTimeout(refreshTrends, TRENDS_REFRESH_MS);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("timeline-form").addEventListener("submit", searchTimeline);
  i18n.listeners.push(() => {
    renderTrends();
    if (loopState.phone && loopState.entries.length) renderTimeline(loopState.phone);
  });
  refreshTrends();
});
