// The status page's words in English and Chinese. The language is the one chosen with the
// switch (kept in localStorage), else the browser's first language that is one of these.
// Static labels carry data-i18n="key"; the scripts word what they write with t(key, values).
"use strict";

const WORDS = {
  en: {
    "lang.label": "Language",
    "pill.loggedIn": "logged in",
    "pill.down": "down",
    "pill.store": "Store",
    "pill.reachable": "reachable",
    "pill.unreachable": "unreachable",
    "pill.unknown": "unknown",
    "refreshed.never": "Not refreshed yet",
    "refreshed.at": "Updated {time} ({age} ago)",
    logout: "Log out",
    loading: "Loading…",
    "campaigns.title": "Campaigns",
    "campaigns.none": "No campaign is configured.",
    "campaign.pause": "Pause",
    "campaign.resume": "Resume",
    "campaign.calls": "Calls in flight",
    "campaign.cps": "Calls per second",
    "campaign.next": "Next due",
    "campaign.agents": "Free agents",
    "campaign.pacing": "Pacing",
    "campaign.abandon": "Abandon rate",
    "campaign.occupancy": "Agents",
    "campaign.perhour": "Per agent-hour",
    "campaign.worker": "on {worker}",
    "campaign.outcome": "Outcome",
    "campaign.attempts": "Attempts",
    "campaign.disposition": "Disposition",
    "campaign.callcount": "Calls",
    "campaign.lines": "{calls} of {max} lines",
    "campaign.atMost": "at most {cps}",
    "campaign.nothingDue": "nothing due",
    "campaign.now": "now",
    "campaign.noAttempt": "no attempt yet",
    "campaign.noneRecorded": "none recorded",
    "campaign.inFlight": "in flight",
    "live.call": "Live call",
    "live.age": "Age",
    "live.started": "Started",
    "live.none": "No call in flight",
    "sms.title": "SMS by order stage",
    "sms.stage": "Stage",
    "sms.total": "Total",
    "sms.none": "No SMS stage is configured and none was sent.",
    "dead.title": "Latest dead messages",
    "dead.phone": "Phone",
    "dead.code": "Code",
    "dead.tries": "Tries",
    "dead.none": "No dead message.",
    "banner.down": "The daemon does not answer: {problems}.",
    "banner.since": " Showing what was read at {time}.",
    "timeline.title": "Timeline of a number",
    "timeline.label": "Phone number",
    "timeline.search": "Search",
    "timeline.when": "When",
    "timeline.what": "What",
    "timeline.campaign": "Campaign",
    "timeline.order": "Order",
    "timeline.reason": "Reason",
    "timeline.until": "until {time}",
    "timeline.empty": "Nothing recorded for {phone}.",
    "timeline.found": "{count} entries for {phone}, oldest first.",
    "timeline.invalid": "Not a phone number: {why}",
    "trends.title": "Last 24 hours, per hour",
    "trends.none": "Nothing happened in the last 24 hours.",
    "trends.calls": "{name}: calls",
    "trends.answerRate": "{name}: answer rate",
    "trends.abandoned": "{name}: abandons",
    "trends.sent": "SMS {name}: sent",
    "trends.delivered": "SMS {name}: delivered",
    "trends.total": "{total} in 24 h",
    "trends.rate": "{rate} over 24 h",
  },
  zh: {
    "lang.label": "语言",
    "pill.loggedIn": "已登录",
    "pill.down": "断开",
    "pill.store": "数据库",
    "pill.reachable": "可用",
    "pill.unreachable": "不可用",
    "pill.unknown": "未知",
    "refreshed.never": "尚未刷新",
    "refreshed.at": "更新于 {time}（{age}前）",
    logout: "退出登录",
    loading: "加载中…",
    "campaigns.title": "外呼任务",
    "campaigns.none": "未配置外呼任务。",
    "campaign.pause": "暂停",
    "campaign.resume": "恢复",
    "campaign.calls": "进行中的通话",
    "campaign.cps": "每秒呼叫数",
    "campaign.next": "下次到期",
    "campaign.agents": "空闲坐席",
    "campaign.pacing": "外呼节奏",
    "campaign.abandon": "放弃率",
    "campaign.occupancy": "坐席",
    "campaign.perhour": "每坐席小时",
    "campaign.worker": "由 {worker} 运行",
    "campaign.outcome": "结果",
    "campaign.attempts": "呼叫次数",
    "campaign.disposition": "处理结果",
    "campaign.callcount": "通话",
    "campaign.lines": "{calls} / {max} 线路",
    "campaign.atMost": "最多 {cps}",
    "campaign.nothingDue": "无待呼",
    "campaign.now": "现在",
    "campaign.noAttempt": "尚无呼叫",
    "campaign.noneRecorded": "暂无记录",
    "campaign.inFlight": "进行中",
    "live.call": "实时通话",
    "live.age": "时长",
    "live.started": "开始",
    "live.none": "当前无通话",
    "sms.title": "各订单阶段短信",
    "sms.stage": "阶段",
    "sms.total": "合计",
    "sms.none": "未配置短信阶段，也未发送短信。",
    "dead.title": "最近发送失败的短信",
    "dead.phone": "号码",
    "dead.code": "错误码",
    "dead.tries": "尝试次数",
    "dead.none": "没有发送失败的短信。",
    "banner.down": "服务无响应：{problems}。",
    "banner.since": "显示的是 {time} 读取的数据。",
    "timeline.title": "号码时间线",
    "timeline.label": "手机号码",
    "timeline.search": "查询",
    "timeline.when": "时间",
    "timeline.what": "事件",
    "timeline.campaign": "外呼任务",
    "timeline.order": "订单",
    "timeline.reason": "原因",
    "timeline.until": "直到 {time}",
    "timeline.empty": "{phone} 没有记录。",
    "timeline.found": "{phone} 共 {count} 条记录，按时间先后。",
    "timeline.invalid": "号码无效：{why}",
    "trends.title": "最近24小时（按小时）",
    "trends.none": "最近24小时没有活动。",
    "trends.calls": "{name}：呼叫数",
    "trends.answerRate": "{name}：接通率",
    "trends.abandoned": "{name}：放弃数",
    "trends.sent": "短信 {name}：已发送",
    "trends.delivered": "短信 {name}：已送达",
    "trends.total": "24小时共 {total}",
    "trends.rate": "24小时 {rate}",
  },
};

// What each timeline kind is called, in each language.
const KINDS = {
  zh: {
    event_received: "收到订单事件",
    sms_queued: "短信排队",
    sms_skipped: "短信未发送",
    sms_sent: "短信已发送",
    sms_retry: "短信稍后重试",
    sms_held: "短信因每日上限推迟",
    sms_dead: "短信发送失败",
    sms_delivered: "短信已送达",
    sms_failed: "短信未送达",
    sms_reply: "客户回复",
    opted_out: "退订",
    contact_added: "加入外呼任务",
    contact_skipped: "未加入外呼任务",
    held_back: "暂缓呼叫",
    dialled: "已拨打",
    call_outcome: "通话结果",
    disposition: "处理结果",
    retry_scheduled: "安排重拨",
    contact_finished: "外呼结束",
    contact_cancelled: "外呼取消",
    escalated: "升级处理",
    webhook_queued: "待通知订单系统",
    webhook_retry: "通知订单系统重试",
    reported: "已通知订单系统",
    webhook_dead: "通知订单系统失败",
  },
};

function chooseLanguage() {
  const kept = window.localStorage.getItem("outreach-lang");
  if (kept && WORDS[kept]) return kept;
  for (const wanted of navigator.languages || [navigator.language || "en"]) {
    const base = String(wanted).toLowerCase().split("-")[0];
    if (WORDS[base]) return base;
  }
  return "en";
}

const i18n = { lang: chooseLanguage(), listeners: [] };

function t(key, values = {}) {
  const text = (WORDS[i18n.lang] && WORDS[i18n.lang][key]) || WORDS.en[key] || key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in values ? String(values[name]) : `{${name}}`));
}

function kindName(kind) {
  const names = KINDS[i18n.lang];
  return (names && names[kind]) || kind.replace(/_/g, " ");
}

function applyLanguage(lang) {
  i18n.lang = WORDS[lang] ? lang : "en";
  document.documentElement.lang = i18n.lang === "zh" ? "zh-CN" : "en";
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const template of document.querySelectorAll("template")) {
    for (const node of template.content.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  }
  const select = document.getElementById("lang");
  if (select) select.value = i18n.lang;
  for (const listener of i18n.listeners) listener();
}

document.addEventListener("DOMContentLoaded", () => {
  applyLanguage(i18n.lang);
  document.getElementById("lang").addEventListener("change", (event) => {
    window.localStorage.setItem("outreach-lang", event.target.value);
    applyLanguage(event.target.value);
  });
});
