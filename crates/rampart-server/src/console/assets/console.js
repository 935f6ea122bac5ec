// Rampart console: progressive enhancement only. Every page reads and every form works
// without this script; with it, the Live page streams calls as they happen and a tool
// call shows its progress. No inline code (the Content-Security-Policy forbids it).
"use strict";

const csrf = () => document.body.dataset.csrf || "";

// Buttons that change something irreversibly ask first.
document.addEventListener("submit", (event) => {
  const button = event.submitter;
  const question = (button && button.dataset.confirm) || event.target.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});

// Reads a text/event-stream response body, calling onEvent(name, data) per event.
async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      onEvent(name, data.join("\n"));
    }
  }
}

// Live: rows arrive over SSE as server-rendered HTML (escaped there), newest first.
function startLive() {
  const body = document.querySelector("#live-calls tbody");
  if (!body || !window.EventSource) return;
  const status = document.getElementById("live-status");
  const source = new EventSource("/console/live/events" + window.location.search);
  source.addEventListener("call", (event) => {
    const template = document.createElement("template");
    template.innerHTML = event.data;
    const row = template.content.firstElementChild;
    if (!row) return;
    row.classList.add("fresh");
    const empty = body.querySelector("tr.empty");
    if (empty) empty.remove();
    body.prepend(row);
    while (body.rows.length > 200) body.deleteRow(body.rows.length - 1);
  });
  source.addEventListener("open", () => { if (status) status.textContent = "Streaming live."; });
  source.addEventListener("error", () => { if (status) status.textContent = "Stream interrupted; retrying…"; });
}

// Tools: call with progress. The server answers text/event-stream when asked: `progress`
// events, then one `result` event holding the rendered result.
function startToolForm() {
  const form = document.getElementById("tool-form");
  if (!form || !window.fetch || !window.ReadableStream) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const area = document.getElementById("tool-result-area");
    const progress = document.getElementById("tool-progress");
    const message = document.getElementById("tool-progress-message");
    const button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    if (progress) { progress.hidden = false; progress.removeAttribute("value"); }
    if (message) message.textContent = "Running…";
    try {
      const response = await fetch(form.action, {
        method: "POST",
        headers: { "accept": "text/event-stream", "x-csrf-token": csrf(),
                   "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(new FormData(form)),
        credentials: "same-origin",
      });
      if (!response.ok || !(response.headers.get("content-type") || "").startsWith("text/event-stream")) {
        area.innerHTML = await response.text();
        return;
      }
      await readEvents(response, (name, data) => {
        if (name === "progress") {
          const p = JSON.parse(data);
          if (progress) {
            if (p.total) { progress.max = p.total; progress.value = p.progress; } else progress.removeAttribute("value");
          }
          if (message) message.textContent = p.message || (p.total ? `${p.progress} / ${p.total}` : `${p.progress}`);
        } else if (name === "result") {
          area.innerHTML = data;
        }
      });
      if (message) message.textContent = "Done.";
    } catch (error) {
      if (message) message.textContent = "The call failed: " + error;
    } finally {
      if (button) button.disabled = false;
      if (progress) progress.hidden = true;
    }
  });
}

startLive();
startToolForm();
