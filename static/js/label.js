// Prefloop labeler page: rank completions into tiers by keyboard or drag and drop.
// The ranking is a list of tiers (best first); completions in one tier are tied. It is
// kept in `state.tiers`, drawn as rank rows with drop gaps between them, and serialized
// as JSON into the form's hidden `ranking` field. Text from the server is never parsed
// as HTML here: the cards come rendered from the template (escaped, or Markdown sanitized
// and highlighted on the server) and are only moved.
(function () {
  "use strict";

  var state = null;

  function toast(level, message) {
    if (window.prefloopToast) window.prefloopToast(level, message);
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function ordinal(i) {
    return i === 0 ? "Best" : "Rank " + (i + 1);
  }

  // ----- model -------------------------------------------------------------------------

  function snapshot() {
    return { tiers: state.tiers.map(function (t) { return t.slice(); }), last: state.last };
  }

  function remember() {
    state.history.push(snapshot());
    if (state.history.length > 200) state.history.shift();
  }

  function without(cid) {
    return state.tiers
      .map(function (t) { return t.filter(function (c) { return c !== cid; }); })
      .filter(function (t) { return t.length > 0; });
  }

  function tierOf(cid) {
    for (var i = 0; i < state.tiers.length; i++) {
      if (state.tiers[i].indexOf(cid) >= 0) return i;
    }
    return -1;
  }

  function rankedCount() {
    return state.tiers.reduce(function (sum, t) { return sum + t.length; }, 0);
  }

  function place(cid) {
    if (!cid) return;
    remember();
    state.tiers = without(cid);
    state.tiers.push([cid]);
    state.last = cid;
    render();
  }

  function unrank(cid) {
    remember();
    state.tiers = without(cid);
    if (state.last === cid) state.last = null;
    render();
  }

  function tie() {
    if (!state.allowTies) { toast("error", "This project does not allow ties."); return; }
    var i = state.last ? tierOf(state.last) : -1;
    if (i <= 0) { toast("error", "Place a completion below another one first, then tie it."); return; }
    remember();
    var cid = state.last;
    state.tiers[i] = state.tiers[i].filter(function (c) { return c !== cid; });
    state.tiers[i - 1].push(cid);
    state.tiers = state.tiers.filter(function (t) { return t.length > 0; });
    render();
  }

  function undo() {
    var previous = state.history.pop();
    if (!previous) return;
    state.tiers = previous.tiers;
    state.last = previous.last;
    render();
  }

  function reset() {
    if (!state.tiers.length) return;
    remember();
    state.tiers = [];
    state.last = null;
    render();
  }

  // ----- drawing -----------------------------------------------------------------------

  function dropList(kind, index) {
    var list = el("ul", "drop " + kind);
    list.dataset.kind = kind;
    list.dataset.index = String(index);
    return list;
  }

  function gapRow(index, isEnd) {
    var row = el("li", "gap" + (isEnd ? " gap-end" : ""));
    if (isEnd) row.appendChild(el("span", "gap-label", "Drop here for a new rank"));
    row.appendChild(dropList("gap", index));
    return row;
  }

  function tierRow(tier, index) {
    var row = el("li", "tier" + (tier.length > 1 ? " tied" : ""));
    row.appendChild(el("span", "tier-label", ordinal(index) + (tier.length > 1 ? " (tie)" : "")));
    var list = dropList("tier", index);
    tier.forEach(function (cid) { list.appendChild(state.chips[cid]); });
    row.appendChild(list);
    return row;
  }

  function drawBadges() {
    Object.keys(state.chips).forEach(function (cid) {
      var n = state.chips[cid].dataset.n;
      var badge = state.form.querySelector('[data-rank-of="' + n + '"]');
      var i = tierOf(cid);
      if (!badge) return;
      badge.textContent = i < 0 ? "" : (i === 0 ? "Best" : "Rank " + (i + 1)) +
        (state.tiers[i].length > 1 ? " (tie)" : "");
      badge.classList.toggle("ranked", i >= 0);
    });
  }

  function render() {
    state.sortables.forEach(function (s) { s.destroy(); });
    state.sortables = [];
    var board = state.tiersEl;
    while (board.firstChild) board.removeChild(board.firstChild);
    state.tiers.forEach(function (tier, i) {
      board.appendChild(gapRow(i, false));
      board.appendChild(tierRow(tier, i));
    });
    board.appendChild(gapRow(state.tiers.length, true));
    state.order.forEach(function (cid) {
      if (tierOf(cid) < 0) state.pool.appendChild(state.chips[cid]);
    });
    state.form.classList.toggle("complete", rankedCount() === state.order.length);
    state.ranking.value = JSON.stringify(state.tiers);
    drawBadges();
    makeSortable();
  }

  // ----- drag and drop (SortableJS) ------------------------------------------------------

  function readBoard() {
    var tiers = [];
    Array.prototype.forEach.call(state.tiersEl.querySelectorAll("ul.drop"), function (list) {
      var cids = Array.prototype.map.call(list.querySelectorAll(".chip"), function (c) {
        return c.dataset.cid;
      });
      if (cids.length) tiers.push(cids);
    });
    return tiers;
  }

  function dropped(event) {
    var cid = event.item.dataset.cid;
    var tiers = readBoard();
    var merged = event.to.dataset.kind === "tier" && event.to.querySelectorAll(".chip").length > 1;
    if (merged && !state.allowTies) {
      toast("error", "This project does not allow ties: drop between ranks instead.");
      render();
      return;
    }
    remember();
    state.tiers = tiers;
    state.last = tierOf(cid) >= 0 ? cid : null;
    render();
  }

  function makeSortable() {
    if (!window.Sortable) return;
    var lists = Array.prototype.slice.call(state.tiersEl.querySelectorAll("ul.drop"));
    lists.push(state.pool);
    lists.forEach(function (list) {
      state.sortables.push(window.Sortable.create(list, {
        group: "ranking",
        animation: 120,
        forceFallback: true,
        fallbackTolerance: 4,
        emptyInsertThreshold: 12,
        onStart: function () { state.form.classList.add("dragging"); state.dragging = true; },
        onEnd: function (event) {
          state.form.classList.remove("dragging");
          setTimeout(function () { state.dragging = false; }, 0);
          dropped(event);
        },
      }));
    });
  }

  // ----- submit, skip, help ----------------------------------------------------------

  function rejected() {
    var box = state.form.querySelector('input[name="reject_all"]');
    return Boolean(box && box.checked);
  }

  function showProblem(message) {
    var box = state.form.querySelector("#task-errors");
    while (box.firstChild) box.removeChild(box.firstChild);
    box.appendChild(el("p", "task-error-box", message));
  }

  function readyToSubmit() {
    if (rejected() || rankedCount() === state.order.length) return true;
    showProblem("Rank all " + state.order.length + " completions first" +
      (state.form.querySelector('input[name="reject_all"]') ? ", or mark them all unacceptable." : "."));
    return false;
  }

  function submit() {
    if (readyToSubmit()) state.form.requestSubmit();
  }

  function skip() {
    var button = state.form.querySelector('[data-action="skip"]');
    if (button) button.click();
  }

  // The shortcuts dialog is closed by this script, at once, on the key that asks for it.
  // Left to the browser, Chromium may finish closing the modal only after later keys arrive:
  // they would be dropped, or land on its focused Close button (Enter would not submit).
  var helpOpen = false;

  function showHelp() {
    var dialog = document.getElementById("shortcuts");
    if (!dialog || dialog.open) return;
    dialog.showModal();
    helpOpen = true;
  }

  function closeHelp(event) {
    var dialog = document.getElementById("shortcuts");
    helpOpen = false;
    if (dialog && dialog.open) {
      event.preventDefault();
      dialog.close();
    }
    releaseFocus(dialog);
  }

  // Chromium gives focus back a moment after a dialog closes: until then the next keys would
  // still land on its Close button (Enter would "press" it instead of submitting the task).
  function releaseFocus(dialog) {
    if (dialog && dialog.contains(document.activeElement)) document.activeElement.blur();
  }

  // A key aimed at an element of a closed dialog (focus not yet given back) is a page key.
  function keyTarget(event) {
    var target = event.target;
    var dialog = target && target.closest ? target.closest("dialog") : null;
    return dialog && !dialog.open ? document.body : target;
  }

  function closesHelp(event) {
    if (event.key === "Escape") return true;
    var dialog = document.getElementById("shortcuts");
    var onButton = event.target.tagName === "BUTTON" && dialog && dialog.contains(event.target);
    return onButton && (event.key === "Enter" || event.key === " ");
  }

  // ----- wiring ------------------------------------------------------------------------

  function setup(form) {
    if (form.dataset.ready) return;
    form.dataset.ready = "1";
    var chips = {};
    var order = [];
    Array.prototype.forEach.call(form.querySelectorAll("#pool .chip"), function (chip) {
      chips[chip.dataset.cid] = chip;
      order.push(chip.dataset.cid);
    });
    state = {
      form: form, chips: chips, order: order, tiers: [], history: [], last: null,
      sortables: [], dragging: false, started: performance.now(),
      allowTies: form.dataset.allowTies === "true",
      tiersEl: form.querySelector("#tiers"), pool: form.querySelector("#pool"),
      ranking: form.querySelector('input[name="ranking"]'),
    };
    render();
  }

  function cidOfNumber(n) {
    return state.order[n - 1];
  }

  function isTyping(target) {
    if (!target || !target.tagName) return false;
    if (target.isContentEditable || target.tagName === "TEXTAREA" || target.tagName === "SELECT") return true;
    return target.tagName === "INPUT" && !/^(radio|checkbox)$/.test(target.type);
  }

  function onKey(event) {
    if (helpOpen) {
      if (closesHelp(event)) closeHelp(event);
      return;
    }
    if (event.key === "?" && !isTyping(event.target)) { event.preventDefault(); showHelp(); return; }
    // A key may arrive between an htmx swap of the task and htmx's onLoad: set the new form up
    // now rather than drop the key.
    var current = document.getElementById("task-form");
    if (current && (!state || state.form !== current)) setup(current);
    if (!state || !document.body.contains(state.form)) return;
    var target = keyTarget(event);
    if (event.ctrlKey || event.metaKey || event.altKey || isTyping(target)) return;
    var key = event.key;
    var onButton = target.tagName === "BUTTON" || target.tagName === "A" ||
      target.tagName === "SUMMARY";
    if (/^[1-9]$/.test(key)) {
      var n = Number(key);
      if (n <= state.order.length) { event.preventDefault(); place(cidOfNumber(n)); }
    } else if (key === "=" || key === "t" || key === "T") {
      event.preventDefault(); tie();
    } else if (key === "Backspace") {
      event.preventDefault(); undo();
    } else if (key === "Enter" && target.classList && target.classList.contains("chip")) {
      event.preventDefault(); toggleChip(target);
    } else if (key === "Enter" && !onButton) {
      event.preventDefault(); submit();
    } else if (key === "s" || key === "S") {
      event.preventDefault(); skip();
    }
  }

  function toggleChip(chip) {
    if (tierOf(chip.dataset.cid) >= 0) unrank(chip.dataset.cid);
    else place(chip.dataset.cid);
  }

  // One completion across the whole row (and no longer scrolled within its card), or back.
  function widen(button) {
    var card = button.closest(".completion");
    if (!card) return;
    var wide = !card.classList.contains("wide");
    card.classList.toggle("wide", wide);
    button.setAttribute("aria-pressed", wide ? "true" : "false");
    if (wide) card.scrollIntoView({ block: "nearest" });
  }

  function onClick(event) {
    var action = event.target.closest("[data-action]");
    if (action && action.dataset.action === "help") { showHelp(); return; }
    if (action && action.dataset.action === "widen") { widen(action); return; }
    if (!state || !state.form.contains(event.target)) return;
    if (action && action.dataset.action === "undo") undo();
    else if (action && action.dataset.action === "reset") reset();
    var chip = event.target.closest(".chip");
    if (chip && !state.dragging) toggleChip(chip);
  }

  function isTaskSubmit(detail) {
    return state && detail.elt === state.form;
  }

  document.addEventListener("keydown", onKey);
  // "close" does not bubble: listen in the capture phase (the Close button, or any other way out).
  document.addEventListener("close", function (event) {
    if (event.target.id !== "shortcuts") return;
    helpOpen = false;
    releaseFocus(event.target);
  }, true);
  document.addEventListener("click", onClick);
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (isTaskSubmit(event.detail) && !readyToSubmit()) event.preventDefault();
  });
  document.addEventListener("htmx:configRequest", function (event) {
    if (!isTaskSubmit(event.detail) && !(state && state.form.contains(event.detail.elt))) return;
    var params = event.detail.parameters;
    params.duration_ms = String(Math.round(performance.now() - state.started));
    params.ranking = rejected() ? "" : JSON.stringify(state.tiers);
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "task") {
      var title = document.getElementById("task-title");
      if (title) title.focus({ preventScroll: true });
    }
  });
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("task-form");
    if (form) setup(form);
    if (window.htmx) {
      window.htmx.onLoad(function (node) {
        var found = node.id === "task-form" ? node : node.querySelector && node.querySelector("#task-form");
        if (found) setup(found);
        else if (node.id === "task") state = null;
      });
    }
  });
})();
