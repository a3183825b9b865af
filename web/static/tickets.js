// Live updates of a ticket's page: the events the server streams
// (Server-Sent Events from the thread's data-stream address) are appended
// to the thread as the page itself renders them. Text goes in as text,
// never as HTML. Without script the page works as it is: reload to see new
// answers. The browser reconnects by itself and sends the last event id,
// so the server replays whatever was missed.
(function () {
  "use strict";

  var thread = document.getElementById("thread");
  if (!thread || typeof window.EventSource !== "function") {
    return;
  }
  var address = thread.getAttribute("data-stream");
  var after = thread.getAttribute("data-last-event-id") || "0";
  if (!address) {
    return;
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = text;
    }
    return node;
  }

  function badge(text, extra) {
    return element("span", extra ? "badge " + extra : "badge", text);
  }

  // The markup of web/templates/ticket_thread.html.
  function render(event) {
    var item = element("li", "ticket-event");
    if (event.internal) {
      item.classList.add("internal");
    }
    if (event.staff) {
      item.classList.add("staff");
    }
    item.id = "event-" + event.id;
    item.setAttribute("data-kind", event.kind);

    var meta = element("p", "ticket-meta");
    meta.appendChild(element("strong", null, event.author));
    if (event.staff) {
      meta.appendChild(document.createTextNode(" "));
      meta.appendChild(badge("Support"));
    }
    if (event.internal) {
      meta.appendChild(document.createTextNode(" "));
      meta.appendChild(badge("Internal note", "badge-internal"));
    }
    meta.appendChild(document.createTextNode(" · "));
    meta.appendChild(element("time", null, event.at));
    item.appendChild(meta);

    if (event.kind === "OPENED") {
      item.appendChild(element("p", "ticket-what", "Opened the ticket."));
    } else if (event.kind === "STATUS") {
      item.appendChild(
        element("p", "ticket-what", "Status: " + event.from_label + " \u2192 " + event.to_label)
      );
    } else if (event.kind === "ASSIGNED") {
      item.appendChild(
        element("p", "ticket-what", "Assigned to " + (event.assignee || "nobody") + ".")
      );
    }
    if (event.body) {
      item.appendChild(element("div", "ticket-body", event.body));
    }
    return item;
  }

  var source = new EventSource(address + "?after=" + encodeURIComponent(after));
  source.addEventListener("ticket", function (message) {
    var event;
    try {
      event = JSON.parse(message.data);
    } catch (e) {
      return;
    }
    if (!event || typeof event.id !== "number") {
      return;
    }
    if (document.getElementById("event-" + event.id)) {
      return;
    }
    thread.appendChild(render(event));
    thread.setAttribute("data-last-event-id", String(event.id));
    if (event.kind === "STATUS" && event.to_label) {
      var status = document.getElementById("ticket-status");
      if (status) {
        status.textContent = event.to_label;
      }
    }
  });
  source.addEventListener("open", function () {
    var state = document.getElementById("live-state");
    if (state) {
      state.textContent = "Live: new answers appear here as they are written.";
    }
  });
})();
