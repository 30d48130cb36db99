// The console's actions: a <form data-api="/v1/..."> is sent to the management API as JSON,
// with the session's CSRF token; the API's answer (or its problem, field by field) is shown
// in the form, and the page reloads to show what changed.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

function bodyOf(form, submitter) {
  const body = {};
  for (const field of form.elements) {
    if (!field.name || field.disabled || field.tagName === "BUTTON") continue;
    if (field.value === "") continue;
    if (field.dataset.type === "bool") body[field.name] = field.value === "true";
    else if (field.dataset.type === "int") body[field.name] = Number(field.value);
    else body[field.name] = field.value;
  }
  if (submitter && submitter.name === "dry_run") body.dry_run = true;
  return body;
}

function showProblem(outcome, problem) {
  outcome.className = "outcome problem";
  const errors = (problem.errors || []).map((e) => `${e.field}: ${e.reason}`);
  outcome.textContent = [problem.detail || problem.title || "Refused"].concat(errors).join(" · ");
}

function showPreview(form, outcome, answer) {
  const invoice = answer.invoice;
  outcome.className = "outcome preview";
  outcome.textContent = invoice
    ? `Would invoice ${invoice.currency} ${invoice.total}: ` +
      invoice.items.map((i) => `${i.description} ${i.amount}`).join("; ")
    : "Nothing would be invoiced.";
  const confirm = form.querySelector("[data-confirm]");
  if (confirm) confirm.hidden = false;
}

document.addEventListener("submit", async (event) => {
  const form = event.target.closest("form[data-api]");
  if (!form) return;
  event.preventDefault();
  const body = bodyOf(form, event.submitter);
  const outcome = form.querySelector(".outcome");
  outcome.className = "outcome";
  outcome.textContent = "…";
  let response;
  try {
    response = await fetch(form.dataset.api, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
      body: JSON.stringify(body),
    });
  } catch (error) {
    showProblem(outcome, { detail: `The API could not be reached: ${error}` });
    return;
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    showProblem(outcome, answer);
    return;
  }
  if (body.dry_run) {
    showPreview(form, outcome, answer);
    return;
  }
  outcome.textContent = "Done.";
  window.location.reload();
});
