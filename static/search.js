// Search as you type on /gh/search. The page works without this script (the form submits and
// the server renders); this only saves the round trip of a full page. Rows are built with
// textContent, never innerHTML, so directory data cannot inject markup.
"use strict";
(function () {
  const form = document.querySelector("[data-search-form]");
  const input = document.querySelector("[data-search-input]");
  const body = document.querySelector("[data-search-rows]");
  const pager = document.querySelector("[data-search-pager]");
  const departed = document.querySelector("[data-search-departed]");
  const count = document.querySelector("[data-search-count]");
  if (!form || !input || !body || !window.fetch) return;

  let timer = null;
  let latest = 0;

  function pageUrl(params) {
    return "/gh/search?" + params.toString();
  }

  const table = document.querySelector("[data-github-web]");
  const githubWeb = table ? table.dataset.githubWeb : "https://github.com";

  function cell(text) {
    const td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  // As the server draws them: the name links to the person's lookup, the login to GitHub.
  function link(href, text, code) {
    const td = document.createElement("td");
    const a = document.createElement("a");
    a.href = href;
    if (code) {
      a.className = "gh";
      a.title = "Profile on GitHub";
      const c = document.createElement("code");
      c.className = "copy";
      c.textContent = text;
      a.appendChild(c);
    } else {
      a.textContent = text;
    }
    td.appendChild(a);
    return td;
  }

  // As the server says it (web::pages::ago): the largest whole unit, the exact time in the title.
  function ago(iso) {
    const t = new Date(iso);
    const secs = Math.floor((Date.now() - t.getTime()) / 1000);
    const say = (n, unit) => (n === 1 ? `1 ${unit} ago` : `${n} ${unit}s ago`);
    if (secs < 60) return "just now";
    if (secs < 3600) return say(Math.floor(secs / 60), "minute");
    if (secs < 86400) return say(Math.floor(secs / 3600), "hour");
    if (secs < 2592000) return say(Math.floor(secs / 86400), "day");
    return `on ${iso.slice(0, 10)}`;
  }

  function exact(iso) {
    return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
  }

  // As the server says it (directory::pages::count_words).
  function countWords(n, q) {
    if (n === 0) return "";
    const people = n === 1 ? "1 person" : `${n} people`;
    if (!q) return people;
    return n === 1 ? `${people} matches` : `${people} match`;
  }

  // The column links sort what is searched now, from its first page.
  function relinkSorts(params) {
    for (const a of document.querySelectorAll("[data-sort-link]")) {
      const url = new URL(a.href, location.href);
      const next = new URLSearchParams(url.search);
      for (const name of ["q", "include_departed"]) {
        if (params.get(name)) next.set(name, params.get(name));
        else next.delete(name);
      }
      next.delete("cursor");
      a.href = pageUrl(next);
    }
  }

  function render(rows, nextLink, total, params) {
    body.replaceChildren(
      ...rows.map((r) => {
        const tr = document.createElement("tr");
        const time = document.createElement("time");
        time.dateTime = r.last_pull_date;
        time.title = exact(r.last_pull_date);
        time.textContent = ago(r.last_pull_date);
        const when = document.createElement("td");
        when.appendChild(time);
        const name = link("/lookup?email=" + encodeURIComponent(r.email), r.name, false);
        if (r.departed_at) {
          const left = document.createElement("span");
          left.className = "tag";
          left.textContent = "left";
          left.title = "Left on " + exact(r.departed_at);
          name.append(" ", left);
        }
        const login = link(githubWeb + "/" + encodeURIComponent(r.github_username), r.github_username, true);
        tr.append(name, cell(r.email), login, when);
        return tr;
      }),
    );
    const none = document.querySelector("[data-testid=no-rows]");
    if (none) none.hidden = rows.length > 0;
    if (count && total !== null) count.textContent = countWords(Number(total), params.get("q") || "");
    relinkSorts(params);
    if (pager) {
      pager.replaceChildren();
      const match = nextLink && /<[^>]*\?([^>]*)>;\s*rel="next"/.exec(nextLink);
      if (match) {
        const a = document.createElement("a");
        a.href = pageUrl(new URLSearchParams(match[1]));
        a.rel = "next";
        a.textContent = "Next page";
        a.dataset.testid = "next";
        pager.appendChild(a);
      }
    }
    history.replaceState(null, "", pageUrl(params));
  }

  async function search() {
    const params = new URLSearchParams(new FormData(form));
    const current = new URLSearchParams(location.search);
    for (const keep of ["sort", "limit"]) {
      if (current.get(keep)) params.set(keep, current.get(keep));
    }
    if (!params.get("q")) params.delete("q");
    if (!params.get("limit")) params.set("limit", document.querySelector("[data-limit]")?.dataset.limit || "50");
    const ticket = ++latest;
    const asked = new URLSearchParams(params);
    asked.set("count", "1");
    try {
      const answer = await fetch("/gh/search.json?" + asked.toString(), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!answer.ok || ticket !== latest) return;
      render(await answer.json(), answer.headers.get("Link"), answer.headers.get("X-Total-Count"), params);
    } catch (_) {
      // The form still works: a failed fetch leaves the server-rendered table as it is.
    }
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(search, 200);
  });
  if (departed) {
    departed.addEventListener("change", () => {
      clearTimeout(timer);
      search();
    });
  }
})();
