// Kumo dashboard behaviour: live instance status over a websocket, confirmation dialogs loaded
// with htmx, toasts for errors. Everything works without it too (plain pages and forms).
(function () {
  "use strict";

  function toast(text, kind) {
    const el = document.createElement("div");
    el.className = "toast" + (kind ? " " + kind : "");
    el.setAttribute("role", kind === "error" ? "alert" : "status");
    el.textContent = text;
    document.body.appendChild(el);
    setTimeout(() => el.remove(), 6000);
  }
  window.kumoToast = toast;

  // --- live status: the server pushes each change of an instance of the selected project.
  const live = { socket: null, delay: 1000, messages: 0 };
  window.kumoLive = live;

  function replaceRow(tr, html) {
    const holder = document.createElement("tbody");
    holder.innerHTML = html.trim();
    const row = holder.firstElementChild;
    if (!row) return;
    // A row that changes stays selected, and keeps its menu open if the user had it open.
    const picked = tr.querySelector('input[name="ids"]');
    const fresh = row.querySelector('input[name="ids"]');
    if (picked && fresh) fresh.checked = picked.checked;
    const menu = tr.querySelector("details.menu[open]");
    const freshMenu = row.querySelector("details.menu");
    tr.replaceWith(row);
    if (menu && freshMenu) freshMenu.open = true;
    if (window.htmx) window.htmx.process(row);
    updateSelection();
  }

  function apply(m) {
    live.messages += 1;
    const rows = document.querySelectorAll('tr[data-instance="' + m.uuid + '"]');
    rows.forEach((tr) => (m.deleted ? tr.remove() : replaceRow(tr, m.row)));
    if (!rows.length && !m.deleted) {
      // A new instance: the first page of the unfiltered, newest-first table shows it at the top.
      const body = document.querySelector("tbody[data-live-insert]");
      if (body) {
        const empty = body.querySelector("tr[data-empty]");
        if (empty) empty.remove();
        const tr = document.createElement("tr");
        body.prepend(tr);
        replaceRow(tr, m.row);
        const count = document.querySelector("[data-count]");
        if (count) {
          const n = Number(count.dataset.count) + 1;
          count.dataset.count = String(n);
          count.textContent = n + (n === 1 ? " instance" : " instances");
        }
      }
    }
    document.querySelectorAll('[data-status-of="' + m.uuid + '"]').forEach((el) => {
      el.outerHTML = m.badge;
    });
    document.querySelectorAll('[data-refresh-on="' + m.uuid + '"]').forEach((el) => {
      if (window.htmx) window.htmx.ajax("GET", el.dataset.refreshUrl, { target: el, swap: "outerHTML" });
    });
    document.body.dispatchEvent(new CustomEvent("instance-changed", { detail: m }));
  }

  // Changes made between this page's rendering and the websocket joining its group were sent to
  // nobody: once joined, fetch again what was still changing (once per connection, not a poll).
  function resync() {
    if (!window.htmx) return;
    document.querySelectorAll("tr[data-transitional]").forEach((tr) => {
      fetch("/instances/" + tr.dataset.instance + "/row", { credentials: "same-origin" })
        .then((r) => (r.ok ? r.text() : r.status === 404 ? "" : null))
        .then((html) => {
          if (html === "") tr.remove();
          else if (html && tr.isConnected) replaceRow(tr, html);
        });
    });
    document.querySelectorAll("[data-refresh-on]").forEach((el) => {
      window.htmx.ajax("GET", el.dataset.refreshUrl, { target: el, swap: "outerHTML" });
    });
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(scheme + "//" + location.host + "/ws/instances/");
    live.socket = socket;
    socket.onopen = () => { live.delay = 1000; document.body.dataset.live = "on"; };
    socket.onmessage = (event) => {
      const m = JSON.parse(event.data);
      if (m.type === "instance") apply(m);
      else if (m.type === "hello") resync();
    };
    socket.onclose = (event) => {
      document.body.dataset.live = "off";
      if (event.code === 4401 || event.code === 4403) return; // signed out or not allowed
      // Reconnect with backoff (a restarted web process); nothing is polled meanwhile.
      setTimeout(connect, live.delay);
      live.delay = Math.min(live.delay * 2, 30000);
    };
  }
  if (document.body.dataset.liveUpdates === "on" && "WebSocket" in window) connect();

  // --- a host drain's page: its guests' table, pushed again at every change of the host's moves.
  const drainTable = document.querySelector("[data-drain-live]");
  function followDrain(delay) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(scheme + "//" + location.host + "/ws/host-moves/?drain=" +
                                 encodeURIComponent(drainTable.dataset.drainLive));
    socket.onopen = () => { drainTable.dataset.live = "on"; delay = 1000; };
    socket.onmessage = (event) => {
      const m = JSON.parse(event.data);
      if (m.type === "drain" && m.id === drainTable.dataset.drainLive) drainTable.innerHTML = m.html;
    };
    socket.onclose = (event) => {
      drainTable.dataset.live = "off";
      if (event.code === 4401 || event.code === 4403) return;
      setTimeout(() => followDrain(Math.min(delay * 2, 30000)), delay);
    };
  }
  if (drainTable && "WebSocket" in window) followDrain(1000);

  // --- a host failure's page: its state, timeline and guests, pushed again at every change of
  // its host; the Confirm button goes once the failure no longer waits for a person.
  const failureBox = document.querySelector("[data-failure-live]");
  function followFailure(delay) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(scheme + "//" + location.host + "/ws/host-moves/?failure=" +
                                 encodeURIComponent(failureBox.dataset.failureLive));
    socket.onopen = () => { failureBox.dataset.live = "on"; delay = 1000; };
    socket.onmessage = (event) => {
      const m = JSON.parse(event.data);
      if (m.type !== "failure" || m.id !== failureBox.dataset.failureLive) return;
      failureBox.innerHTML = m.html;
      const confirm = document.querySelector("[data-confirm-while]");
      if (confirm && (m.closed || !confirm.dataset.confirmWhile.split(" ").includes(m.status))) {
        confirm.remove();
      }
    };
    socket.onclose = (event) => {
      failureBox.dataset.live = "off";
      if (event.code === 4401 || event.code === 4403) return;
      setTimeout(() => followFailure(Math.min(delay * 2, 30000)), delay);
    };
  }
  if (failureBox && "WebSocket" in window) followFailure(1000);

  // --- dialogs: links with data-dialog load their page's fragment into the shared <dialog>.
  const dialog = document.getElementById("dialog");
  document.body.addEventListener("htmx:afterSwap", (event) => {
    if (dialog && event.detail.target && event.detail.target.id === "dialog-body") {
      const next = dialog.querySelector('input[name="next"]');
      if (next && next.dataset.fromPage !== undefined) next.value = location.pathname + location.search;
      if (!dialog.open) dialog.showModal();
      const first = dialog.querySelector("[autofocus], input:not([type=hidden]), select, textarea, button");
      if (first) first.focus();
    }
  });
  document.body.addEventListener("click", (event) => {
    const close = event.target.closest("[data-close-dialog]");
    if (close && dialog) { event.preventDefault(); dialog.close(); }
  });
  document.body.addEventListener("kumo:done", (event) => {
    if (dialog && dialog.open) dialog.close();
    if (event.detail && event.detail.message) toast(event.detail.message);
  });
  document.body.addEventListener("htmx:responseError", (event) => {
    const xhr = event.detail.xhr;
    let text = "The server refused this (" + xhr.status + ").";
    const doc = new DOMParser().parseFromString(xhr.responseText || "", "text/html");
    const said = doc.querySelector("[data-error-message]");
    if (said) text = said.textContent.trim();
    toast(text, "error");
  });
  document.body.addEventListener("htmx:sendError", () => toast("The server cannot be reached.", "error"));

  // --- bulk actions: the table's check boxes belong to #bulk-form; its buttons offer what at
  // least one selected row allows (each row's data-actions), and the server reports each row.
  function boxes() {
    return Array.from(document.querySelectorAll('input[name="ids"][form="bulk-form"]'));
  }
  function updateSelection() {
    const bar = document.querySelector("[data-bulk-bar]");
    if (!bar) return;
    const picked = boxes().filter((b) => b.checked);
    const offered = new Set();
    picked.forEach((b) => (b.dataset.actions || "").split(" ").forEach((a) => a && offered.add(a)));
    bar.querySelectorAll("button[data-bulk]").forEach((button) => {
      button.hidden = !offered.has(button.dataset.bulk);
    });
    const count = bar.querySelector("[data-selected-count]");
    if (count) {
      count.textContent = picked.length
        ? picked.length + " selected" + (offered.size ? ":" : ": nothing is possible for them now")
        : "Tick instances to act on several at once.";
    }
    const all = document.querySelector("[data-select-all]");
    if (all) {
      const total = boxes().length;
      all.checked = total > 0 && picked.length === total;
      all.indeterminate = picked.length > 0 && picked.length < total;
    }
    bar.dataset.selected = String(picked.length);
  }
  window.kumoUpdateSelection = updateSelection;
  document.body.addEventListener("change", (event) => {
    const target = event.target;
    if (target.matches && target.matches("[data-select-all]")) {
      boxes().forEach((b) => (b.checked = target.checked));
    }
    if (target.matches && target.matches('[data-select-all], input[name="ids"]')) updateSelection();
  });
  document.body.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.target && event.detail.target.querySelector("[data-bulk-done]")) {
      boxes().forEach((b) => (b.checked = false));
    }
    updateSelection();
  });
  updateSelection();

  // --- action menus: placed in the viewport (fixed), so the table's scrolling box cannot clip
  // them; above their button when there is no room below, as on the last rows.
  function placeMenu(details) {
    const items = details.querySelector(".menu-items");
    const summary = details.querySelector("summary");
    if (!items || !summary) return;
    const margin = 6;
    items.style.position = "fixed";
    items.style.right = "auto";
    items.style.maxHeight = (window.innerHeight - 2 * margin) + "px";
    items.style.overflowY = "auto";
    const anchor = summary.getBoundingClientRect();
    const height = items.offsetHeight;
    const width = items.offsetWidth;
    let top = anchor.bottom + 2;
    if (top + height > window.innerHeight - margin) {
      const above = anchor.top - 2 - height;
      top = above >= margin ? above : Math.max(margin, window.innerHeight - margin - height);
    }
    let left = anchor.right - width;
    left = Math.min(Math.max(margin, left), window.innerWidth - margin - width);
    items.style.top = top + "px";
    items.style.left = Math.max(margin, left) + "px";
  }
  function openMenus() {
    return Array.from(document.querySelectorAll("details.menu[open]"));
  }
  // "toggle" does not bubble: listen in the capture phase.
  document.addEventListener("toggle", (event) => {
    const details = event.target;
    if (!(details instanceof HTMLDetailsElement) || !details.classList.contains("menu")) return;
    if (details.open) {
      openMenus().forEach((other) => { if (other !== details) other.open = false; });
      placeMenu(details);
    }
  }, true);
  document.addEventListener("click", (event) => {
    openMenus().forEach((details) => {
      if (!details.contains(event.target)) details.open = false;
      else if (event.target.closest(".menu-items a")) details.open = false;
    });
  });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    openMenus().forEach((details) => {
      details.open = false;
      const summary = details.querySelector("summary");
      if (summary) summary.focus();
    });
  });
  const replaceOpenMenus = () => openMenus().forEach(placeMenu);
  window.addEventListener("resize", replaceOpenMenus);
  document.addEventListener("scroll", replaceOpenMenus, true);

  // --- errors shown under a field describe the value that was refused: once the user changes
  // that field they are stale, so they go (the server checks again on submit). Forms checked
  // live by the server (the launch dialog) get fresh errors from it instead.
  document.body.addEventListener("input", (event) => {
    const field = event.target.closest && event.target.closest(".field");
    if (!field || field.closest("[data-live-checked]")) return;
    field.querySelectorAll(".errorlist").forEach((list) => list.remove());
    event.target.removeAttribute("aria-invalid");
  });

  // Copy buttons (shown only where the clipboard can be written): data-copy names what to copy.
  document.querySelectorAll("button[data-copy]").forEach((button) => {
    if (!navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener("click", () => {
      const source = document.querySelector(button.dataset.copy);
      if (!source) return;
      navigator.clipboard.writeText(source.textContent.trim()).then(
        () => toast("Copied."), () => toast("The browser refused to copy.", "error"));
    });
  });

  // The project switcher submits itself when JavaScript runs (a button does it otherwise).
  document.querySelectorAll("select[data-autosubmit]").forEach((select) => {
    select.addEventListener("change", () => select.form.submit());
    const button = select.form.querySelector("button");
    if (button) button.classList.add("visually-hidden");
  });
})();
