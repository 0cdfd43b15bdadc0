// ISO 8601 durations and timer expressions in words (「14日」, 「14日ごと」), as the engine reads them
// (SpiffWorkflow's TimerEventDefinition: PnYnMnWnDTnHnMnS, R[n]/duration for cycles).
const DURATION = /^P(?!$)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/;
const UNITS = {
  ja: ["年", "か月", "週間", "日", "時間", "分", "秒"],
  en: [" year", " month", " week", " day", " hour", " minute", " second"],
};

// An error key when `text` is not a duration the engine accepts, else null.
export function checkDuration(text) {
  return DURATION.test(text || "") ? null : "invalid";
}

export function durationText(text, lang) {
  const m = DURATION.exec(text || "");
  if (!m) return text;
  const units = UNITS[lang] || UNITS.ja;
  const parts = [];
  m.slice(1).forEach((n, i) => {
    if (n === undefined) return;
    const value = Number(n);
    parts.push(lang === "en" ? `${value}${units[i]}${value === 1 ? "" : "s"}` : `${value}${units[i]}`);
  });
  return parts.join(lang === "en" ? " " : "");
}

function unquote(expression) {
  const m = /^\s*(["'])(.*)\1\s*$/.exec(expression || "");
  return m ? m[2] : null;
}

// The words for a timer's expression: 「14日ごと」 for "R/P14D", 「3日後」 for "P3D", the date for a
// timeDate; for an expression (a variable such as monitoring_interval) that its value decides.
export function timerText(expression, kind, lang, M) {
  const literal = unquote(expression);
  if (literal === null) return M.md_timer_dynamic.replace("{expression}", expression.trim());
  const cycle = /^R(\d*)\/(P.*)$/.exec(literal);
  if (cycle && !checkDuration(cycle[2])) {
    const every = M.md_timer_every.replace("{text}", durationText(cycle[2], lang));
    return cycle[1] ? `${every} ${M.md_timer_times.replace("{n}", cycle[1])}` : every;
  }
  if (!checkDuration(literal)) {
    return (kind === "timeCycle" ? M.md_timer_every : M.md_timer_after).replace("{text}", durationText(literal, lang));
  }
  if (!Number.isNaN(Date.parse(literal))) return M.md_timer_at.replace("{text}", literal);
  return M.md_timer_unreadable.replace("{text}", literal);
}
