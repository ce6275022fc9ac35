// Count-as-you-type for the audience builder: POST the query (never in the URL), show counts or the error.
(function () {
  "use strict";
  var form = document.getElementById("audience");
  if (!form) return;
  var query = document.getElementById("query");
  var base = location.pathname.replace(/\/audiences\/?$/, "");
  var timer = null;
  var latest = 0;

  function show(id, text) { document.getElementById(id).textContent = text; }
  function fmt(n) { return Number(n).toLocaleString("en-US"); }

  function render(data) {
    var error = document.getElementById("error");
    var counts = document.getElementById("counts");
    if (data.error) {
      error.textContent = data.error;
      error.hidden = false;
      counts.hidden = true;
      return;
    }
    error.hidden = true;
    show("count", fmt(data.count));
    show("matched", fmt(data.matched));
    show("eligible", fmt(data.eligible));
    show("asof", data.as_of);
    show("optout", fmt(data.opted_out_excluded));
    var body = document.querySelector("#sample tbody");
    body.replaceChildren();
    data.sample.forEach(function (row) {
      var tr = document.createElement("tr");
      var link = document.createElement("a");
      link.href = base + "/customers/" + encodeURIComponent(row.customer_id);
      link.textContent = row.customer_id;
      var first = document.createElement("td");
      first.dataset.label = "customer";
      first.appendChild(link);
      tr.appendChild(first);
      ["channel", "matched_because"].forEach(function (key) {
        var td = document.createElement("td");
        td.dataset.label = key.replace("_", " ");
        td.textContent = row[key] || "";
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    counts.hidden = false;
  }

  function count() {
    var text = query.value.trim();
    if (!text) return;
    var ticket = ++latest;
    var body = new URLSearchParams();
    body.set("query", text);
    body.set("csrf_token", form.elements.csrf_token.value);
    fetch(form.dataset.count, { method: "POST", body: body })
      .then(function (r) { return r.json(); })
      .then(function (data) { if (ticket === latest) render(data); })
      .catch(function () {
        if (ticket === latest) render({ error: "The service did not answer; try again in a moment." });
      });
  }

  query.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(count, 350);
  });
  form.querySelectorAll("button[data-query]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      event.preventDefault();
      query.value = button.dataset.query;
      count();
    });
  });
  form.addEventListener("submit", function (event) {
    // Count stays on the page; downloads (formaction) go through as normal form posts.
    var submitter = event.submitter;
    if (submitter && submitter.name === "ready" && !submitter.dataset.query) {
      event.preventDefault();
      count();
    }
  });
})();
