// The stylerec demo page: plain JavaScript over the JSON API (no build step, works offline).
"use strict";

const $ = (id) => document.getElementById(id);

async function api(path, options) {
  const response = await fetch(path, options);
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok && response.status !== 202) {
    throw new Error(body?.detail ? JSON.stringify(body.detail) : `${response.status}`);
  }
  return { status: response.status, body };
}

function card(rec) {
  const item = rec.item || rec;
  const div = document.createElement("div");
  div.className = "card";
  div.dataset.itemId = item.id;
  div.innerHTML = `<img loading="lazy" alt=""><div class="title"></div><div class="reason"></div>`;
  div.querySelector("img").src = item.image_url || "";
  div.querySelector(".title").textContent = item.title || item.id;
  div.querySelector(".reason").textContent = rec.reason || "";
  div.addEventListener("click", () => showItem(item.id));
  return div;
}

function fill(container, recs) {
  container.replaceChildren(...recs.map(card));
  if (!recs.length) container.textContent = "nothing found";
}

// A render is either an image at once (cached) or a queued job to poll.
async function renderInto(container, itemId, style) {
  const url = `/items/${encodeURIComponent(itemId)}/render?style=${encodeURIComponent(style)}`;
  container.textContent = "rendering…";
  for (let attempt = 0; attempt < 240; attempt++) {
    const response = await fetch(url);
    if (response.status === 200) {
      const img = document.createElement("img");
      img.src = URL.createObjectURL(await response.blob());
      img.alt = `${itemId} in ${style}`;
      const original = document.createElement("img");
      original.src = `/items/${encodeURIComponent(itemId)}/image`;
      container.replaceChildren(original, img);
      return;
    }
    if (response.status === 429) {
      container.textContent = `renders are busy: try again in ${response.headers.get("retry-after") || "a few"} s`;
      return;
    }
    if (response.status !== 202) {
      container.textContent = `render failed (${response.status})`;
      return;
    }
    const job = await (await fetch((await response.json()).url)).json();
    if (job.status === "failed") {
      container.textContent = `render failed: ${job.error}`;
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

async function loadShopper() {
  const user = $("shopper").value;
  if (!user) return;
  const category = $("feed-category").value;
  const feed = (await api(`/users/${encodeURIComponent(user)}/feed?k=12${category ? `&category=${category}` : ""}`)).body;
  fill($("feed"), feed.items);
  const styles = (await api(`/users/${encodeURIComponent(user)}/styles`)).body;
  $("styles-line").textContent = styles.length
    ? "preferred styles: " + styles.map((s) => `${s.name} (${s.score.toFixed(2)})`).join(", ")
    : "no palette styles yet";
  // A render is costly: it starts when the shopper asks for it, never on page load.
  if (styles.length && feed.items.length) {
    const [itemId, style] = [feed.items[0].item.id, styles[0].name];
    const button = document.createElement("button");
    button.textContent = `See ${feed.items[0].item.title} in ${style}`;
    button.addEventListener("click", () => renderInto($("restyle"), itemId, style));
    $("restyle").replaceChildren(button);
  }
}

async function showItem(itemId) {
  selectView("merch");
  const item = (await api(`/items/${encodeURIComponent(itemId)}`)).body;
  $("item-detail").classList.remove("hidden");
  $("item-title").textContent = `${item.title} (${item.id})`;
  $("item-image").src = item.image_url || "";
  $("item-detail").dataset.itemId = item.id;
  $("try-result").replaceChildren();
  try {
    fill($("similar"), (await api(`/items/${encodeURIComponent(itemId)}/similar?k=12`)).body.items);
  } catch (error) {
    $("similar").textContent = error.message;
  }
}

function selectView(name) {
  document.querySelectorAll(".view").forEach((v) => v.classList.toggle("hidden", v.id !== `view-${name}`));
  document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t.dataset.view === name));
}

async function init() {
  document.querySelectorAll(".tab").forEach((t) => t.addEventListener("click", () => selectView(t.dataset.view)));
  const users = (await api("/users?limit=100")).body;
  $("shopper").replaceChildren(...users.map((u) => new Option(u, u)));
  const items = (await api("/items?limit=500")).body.items;
  [...new Set(items.map((i) => i.category))].sort().forEach((c) => $("feed-category").add(new Option(c, c)));
  const styles = (await api("/styles")).body;
  $("try-style").replaceChildren(...styles.map((s) => new Option(s.name, s.name)));
  $("shopper").addEventListener("change", loadShopper);
  $("feed-category").addEventListener("change", loadShopper);
  $("try-button").addEventListener("click", () =>
    renderInto($("try-result"), $("item-detail").dataset.itemId, $("try-style").value));
  $("search-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const found = (await api(`/items?limit=60&q=${encodeURIComponent($("search").value)}`)).body.items;
    fill($("search-results"), found);
  });
  $("upload-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = $("upload").files[0];
    if (!file) return;
    const form = new FormData();
    form.append("image", file);
    form.append("k", "12");
    if ($("shopper").value) form.append("user_id", $("shopper").value);
    $("upload-status").textContent = "searching…";
    try {
      fill($("upload-results"), (await api("/shop-this-style", { method: "POST", body: form })).body.items);
      $("upload-status").textContent = "";
    } catch (error) {
      $("upload-status").textContent = error.message;
    }
  });
  await loadShopper();
}

init();
