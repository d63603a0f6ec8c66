// The actiongate console: plain browser JavaScript, served from the binary with the page (no build
// step, no framework, nothing from outside). It reads the admin API with the token from the URL
// fragment (#token=..., never sent to the server) or the login form, keeps it in sessionStorage
// and sends it as a Bearer header; no cookie, so no other site can make this page act.
// Everything shown is set as text (textContent), never as HTML.

(() => {
  const TOKEN_KEY = "actiongate.admin-token";
  const REFRESH_MS = 5000;
  const PAGE = 200;

  const $ = (id) => document.getElementById(id);
  let token = "";
  let timer;
  let loading = false;

  function takeTokenFromFragment() {
    const match = /(?:^#|&)token=([^&]*)/.exec(location.hash);
    if (!match) return;
    try {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    } catch {
      sessionStorage.setItem(TOKEN_KEY, match[1]);
    }
    // Out of the address bar and the history: the token stays in this tab's sessionStorage only.
    history.replaceState(null, "", location.pathname + location.search);
  }

  class ApiFailure extends Error {
    constructor(status, reason) {
      super(reason);
      this.status = status;
    }
  }

  async function api(path, options = {}) {
    const response = await fetch(`api/${path}`, {
      method: options.method ?? "GET",
      headers: {
        authorization: `Bearer ${token}`,
        ...(options.body !== undefined ? { "content-type": "application/json" } : {}),
      },
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      credentials: "omit",
      cache: "no-store",
    });
    let body;
    try {
      body = await response.json();
    } catch {
      body = undefined;
    }
    if (!response.ok) {
      const reason = body?.error_output?.error_reason ?? `HTTP ${response.status}`;
      throw new ApiFailure(response.status, reason);
    }
    return body;
  }

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function cell(text, className) {
    return element("td", text ?? "", className);
  }

  function button(label, onClick, options = {}) {
    const node = element("button", label, options.className);
    node.type = "button";
    if (options.ariaLabel) node.setAttribute("aria-label", options.ariaLabel);
    node.addEventListener("click", async () => {
      node.disabled = true;
      try {
        await onClick();
      } finally {
        node.disabled = false;
      }
    });
    return node;
  }

  function time(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    return date.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
  }

  function fill(tbody, rows, columns, emptyText) {
    tbody.replaceChildren();
    if (rows.length === 0) {
      const row = element("tr");
      const only = cell(emptyText, "empty");
      only.colSpan = columns;
      row.append(only);
      tbody.append(row);
      return;
    }
    for (const cells of rows) {
      const row = element("tr");
      row.append(...cells);
      tbody.append(row);
    }
  }

  function outcomeClass(outcome) {
    if (["delivered", "accepted", "skipped", "resumed", "written_back"].includes(outcome)) return "outcome-ok";
    if (["circuit_open", "replayed", "target_timeout"].includes(outcome)) return "outcome-warn";
    return "outcome-bad";
  }

  function notice(text) {
    $("notice").textContent = text;
  }

  function showError(text) {
    const box = $("error");
    box.textContent = text;
    box.hidden = !text;
  }

  function confirmAction(text, label) {
    const dialog = $("confirm");
    $("confirm-text").textContent = text;
    $("confirm-ok").textContent = label;
    dialog.returnValue = "";
    dialog.showModal();
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    });
  }

  async function act(work) {
    try {
      notice(await work());
      showError("");
    } catch (error) {
      handleFailure(error);
    }
    await refresh();
  }

  function replayOne(letter) {
    return act(async () => {
      await api(`dead-letters/${encodeURIComponent(letter.id)}/replay`, { method: "POST" });
      return `Replayed ${letter.id}: back in the outbox, due now.`;
    });
  }

  async function purgeOne(letter) {
    const sure = await confirmAction(
      `Purge the dead letter ${letter.id} of route ${letter.route}? It is deleted for good and cannot be replayed.`,
      "Purge",
    );
    if (!sure) return;
    await act(async () => {
      await api(`dead-letters/${encodeURIComponent(letter.id)}`, { method: "DELETE" });
      return `Purged ${letter.id}.`;
    });
  }

  async function replayRoute(route, count) {
    const sure = await confirmAction(
      `Replay all ${count} dead letters of route ${route}? They go back to the outbox, due now.`,
      "Replay all",
    );
    if (!sure) return;
    await act(async () => {
      const result = await api("dead-letters/replay", { method: "POST", body: { route, all: true } });
      return `Replayed ${result.replayed} dead letters of ${route} (${result.batches} batches).`;
    });
  }

  async function moveToDeadLetters(route, count) {
    const sure = await confirmAction(
      `Move the ${count} events waiting for route ${route}, which is no longer configured, to the dead letters?`,
      "Move",
    );
    if (!sure) return;
    await act(async () => {
      const result = await api("outbox/dead-letter", { method: "POST", body: { route } });
      return `Moved ${result.moved} events of ${route} to the dead letters.`;
    });
  }

  async function showDetails(letter) {
    let detail;
    try {
      detail = await api(`dead-letters/${encodeURIComponent(letter.id)}`);
    } catch (error) {
      handleFailure(error);
      return;
    }
    const summary = $("details-summary");
    summary.replaceChildren();
    for (const [label, value] of [
      ["Id", detail.id],
      ["Route", detail.route_configured ? detail.route : `${detail.route} (no longer configured)`],
      ["Stage", detail.stage],
      ["Attempts", detail.attempts],
      ["Created", time(detail.created_at)],
      ["Died", time(detail.dead_at)],
      ["Reason", detail.reason],
    ]) {
      summary.append(element("dt", label), element("dd", value));
    }
    fill(
      $("details-history").tBodies[0],
      detail.history.map((attempt) => {
        const answer = element("td");
        if (attempt.answer !== null) {
          const cut = attempt.answer_bytes ? ` (first KB of ${attempt.answer_bytes} bytes)` : "";
          answer.append(element("pre", attempt.answer + cut));
        }
        return [
          cell(time(attempt.time)),
          cell(attempt.stage),
          cell(attempt.outcome, outcomeClass(attempt.outcome)),
          cell(attempt.status, "num"),
          cell(attempt.url, "mono"),
          cell(attempt.reason),
          answer,
        ];
      }),
      7,
      "No attempt recorded",
    );
    $("details").showModal();
  }

  function renderRoutes(data) {
    const delivery = data.delivery;
    $("delivery").textContent = delivery.running
      ? `Delivery from the outbox is running (last poll ${time(delivery.last_poll_at)}).`
      : delivery.last_poll_at
        ? `No gateway has polled the outbox since ${time(delivery.last_poll_at)}: events wait until one runs.`
        : "No gateway delivers from this store yet: events wait in the outbox until one runs.";
    fill(
      $("routes").tBodies[0],
      data.routes.map((route) => {
        const target = `${route.target.type} ${route.target.url ?? (route.target.wsdl ? `(address from ${route.target.wsdl})` : "")}`;
        const outcomes = Object.entries(route.recent_calls)
          .map(([outcome, count]) => `${outcome} ${count}`)
          .join(", ");
        const deliveries =
          route.mode === "async" ||
          route.deliveries.delivered + route.deliveries.retried + route.deliveries.dead_lettered > 0
            ? `delivered ${route.deliveries.delivered}, retried ${route.deliveries.retried}, dead-lettered ${route.deliveries.dead_lettered}`
            : "";
        const actions = cell("", "actions");
        if (route.dead_letters > 0) {
          actions.append(
            button(`Replay all ${route.dead_letters}`, () => replayRoute(route.name, route.dead_letters), {
              ariaLabel: `Replay all ${route.dead_letters} dead letters of route ${route.name}`,
            }),
          );
        }
        const limit = route.rate_limit
          ? `${route.rate_limit.requests} per ${route.rate_limit.per_ms} ms${route.rate_limit.waiting ? `, ${route.rate_limit.waiting} waiting` : ""}`
          : "none";
        return [
          cell(route.name),
          cell(target, "mono"),
          cell(route.mode),
          cell(
            route.breaker.state === "closed"
              ? "closed"
              : `${route.breaker.state} until ${time(route.breaker.retry_at)}`,
            `state-${route.breaker.state}`,
          ),
          cell(limit),
          cell(route.outbox_depth, "num"),
          cell(route.dead_letters, route.dead_letters > 0 ? "num outcome-bad" : "num"),
          cell([outcomes || "no calls yet", deliveries].filter(Boolean).join("; ")),
          actions,
        ];
      }),
      9,
      "No routes",
    );
    $("unconfigured-block").hidden = data.unconfigured.length === 0;
    fill(
      $("unconfigured").tBodies[0],
      data.unconfigured.map((entry) => {
        const actions = cell("", "actions");
        if (entry.outbox_depth > 0) {
          actions.append(
            button("Move to dead letters", () => moveToDeadLetters(entry.route, entry.outbox_depth), {
              ariaLabel: `Move the ${entry.outbox_depth} waiting events of route ${entry.route} to the dead letters`,
            }),
          );
        }
        return [cell(entry.route), cell(entry.outbox_depth, "num"), cell(entry.dead_letters, "num"), actions];
      }),
      4,
      "None",
    );
  }

  function renderDeadLetters(data) {
    $("dead-count").textContent = `(${data.total})`;
    fill(
      $("dead-letters").tBodies[0],
      data.dead_letters.map((letter) => {
        const actions = cell("", "actions");
        actions.append(
          button("Replay", () => replayOne(letter), {
            className: "primary",
            ariaLabel: `Replay ${letter.id}`,
          }),
          button("Details", () => showDetails(letter), { ariaLabel: `Details of ${letter.id}` }),
          button("Purge", () => purgeOne(letter), { className: "danger", ariaLabel: `Purge ${letter.id}` }),
        );
        if (!letter.route_configured) actions.firstChild.disabled = true;
        return [
          cell(letter.id, "id"),
          cell(letter.route_configured ? letter.route : `${letter.route} (not configured)`),
          cell(letter.stage),
          cell(letter.attempts, "num"),
          cell(time(letter.dead_at)),
          cell(
            letter.last_status && !letter.last_error.includes(String(letter.last_status))
              ? `${letter.last_error} (HTTP ${letter.last_status})`
              : letter.last_error,
          ),
          actions,
        ];
      }),
      7,
      "No dead letters",
    );
  }

  function renderOutbox(data) {
    $("outbox-count").textContent = `(${data.total})`;
    fill(
      $("outbox").tBodies[0],
      data.events.map((event) => [
        cell(event.id, "id"),
        cell(event.route_configured ? event.route : `${event.route} (not configured)`),
        cell(event.stage),
        cell(event.attempts, "num"),
        cell(event.leased ? "in flight" : time(event.next_attempt_at)),
        cell(event.last_error ?? ""),
      ]),
      6,
      "The outbox is empty",
    );
  }

  function renderCalls(data) {
    fill(
      $("calls").tBodies[0],
      data.calls.map((call) => [
        cell(time(call.time)),
        cell(call.route ?? "(none)"),
        cell(call.webhook_id ?? "", "id"),
        cell(call.outcome, outcomeClass(call.outcome)),
        cell(call.status, "num"),
        cell(call.target_status ?? "", "num"),
        cell(`${call.duration_ms} ms`, "num"),
      ]),
      7,
      "No calls yet",
    );
  }

  function handleFailure(error) {
    if (error instanceof ApiFailure && (error.status === 401 || error.status === 403)) {
      showError(
        error.status === 401
          ? "The admin API refused the token (401): it is not admin.token of this gateway. Enter the right one."
          : `The admin API is off (403): ${error.message}`,
      );
      if (error.status === 401) {
        sessionStorage.removeItem(TOKEN_KEY);
        token = "";
        showLogin();
      } else {
        stopPolling();
        $("panels").hidden = true;
      }
      return;
    }
    showError(
      error instanceof ApiFailure
        ? `The admin API answered ${error.status}: ${error.message}`
        : `The gateway did not answer (${error.message}); retrying.`,
    );
  }

  async function refresh() {
    if (!token || loading) return;
    loading = true;
    try {
      const [routes, dead, outbox, calls] = await Promise.all([
        api("routes"),
        api(`dead-letters?limit=${PAGE}`),
        api(`outbox?limit=${PAGE}`),
        api("calls?limit=100"),
      ]);
      renderRoutes(routes);
      renderDeadLetters(dead);
      renderOutbox(outbox);
      renderCalls(calls);
      $("panels").hidden = false;
      $("login").hidden = true;
      $("refresh").hidden = false;
      $("forget").hidden = false;
      showError("");
      $("status").textContent = `Updated ${new Date().toLocaleTimeString()}; refreshes every ${REFRESH_MS / 1000} s`;
    } catch (error) {
      handleFailure(error);
    } finally {
      loading = false;
    }
  }

  function startPolling() {
    stopPolling();
    timer = setInterval(() => {
      if (!document.hidden) void refresh();
    }, REFRESH_MS);
  }

  function stopPolling() {
    if (timer) clearInterval(timer);
    timer = undefined;
  }

  function showLogin() {
    stopPolling();
    $("panels").hidden = true;
    $("refresh").hidden = true;
    $("forget").hidden = true;
    $("login").hidden = false;
    $("status").textContent = "Not connected";
    $("token-input").focus();
  }

  function connect() {
    token = sessionStorage.getItem(TOKEN_KEY) ?? "";
    if (!token) {
      showLogin();
      return;
    }
    $("status").textContent = "Connecting…";
    void refresh();
    startPolling();
  }

  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token-input").value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    $("token-input").value = "";
    connect();
  });
  $("refresh").addEventListener("click", () => void refresh());
  $("forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    token = "";
    notice("");
    showError("");
    showLogin();
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) void refresh();
  });

  takeTokenFromFragment();
  connect();
})();
