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
  div.addEventListener("click", () => showItem(item.id, div.closest("#view-merch") ? "merch" : "shopper"));
  return div;
}

function figure(img, caption) {
  const box = document.createElement("figure");
  const label = document.createElement("figcaption");
  label.textContent = caption;
  box.replaceChildren(img, label);
  return box;
}

// "match pattern / colours / both": the facet of a same-style query, from the select next to its results.
function facetOf(select) {
  return $(select).value;
}

function fill(container, recs) {
  container.replaceChildren(...recs.map(card));
  if (!recs.length) container.textContent = "nothing found";
}

// A render is an image at once (fast renderer, or cached) or a queued job to poll (gatys).
// `query` adds parameters (e.g. the shopper, whose remembered adjustments apply); a newer render into the same
// container wins over an older one still on its way.
async function renderInto(container, itemId, style, query = {}) {
  const params = new URLSearchParams({ style, ...query });
  const url = `/items/${encodeURIComponent(itemId)}/render?${params}`;
  const ticket = (container.dataset.ticket = String(Number(container.dataset.ticket || 0) + 1));
  const stale = () => container.dataset.ticket !== ticket;
  if (!container.querySelector("img")) container.textContent = "rendering…";
  for (let attempt = 0; attempt < 240; attempt++) {
    const response = await fetch(url, { cache: "no-store" });
    if (stale()) return;
    if (response.status === 200) {
      const img = document.createElement("img");
      img.src = URL.createObjectURL(await response.blob());
      img.alt = `${itemId} in ${style}`;
      img.className = "rendered";
      const original = document.createElement("img");
      original.src = `/items/${encodeURIComponent(itemId)}/image`;
      original.alt = itemId;
      original.className = "original";
      if (!stale()) container.replaceChildren(figure(original, "original"), figure(img, `restyled: ${style}`));
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

// The loop under the shopper's pick: other styles, adjustments (remembered for the shopper), like / not for me.
const pick = { user: null, item: null, style: null, palette: [] };

function renderPick() {
  renderInto($("restyle"), pick.item, pick.style, { user_id: pick.user });
  document.querySelectorAll("#style-choices button").forEach((b) =>
    b.classList.toggle("current", b.dataset.style === pick.style));
}

function showStylesLine(styles) {
  $("styles-line").textContent = styles.length
    ? "preferred styles: " + styles.map((s) => `${s.name} (${s.score.toFixed(2)}${s.state ? `, ${s.state}` : ""})`).join(", ")
    : "no palette styles yet";
}

async function startLoop(user, itemId, style) {
  Object.assign(pick, { user, item: itemId, style });
  const settings = (await api(`/users/${encodeURIComponent(user)}/render-settings`)).body;
  document.querySelectorAll("#adjustments input").forEach((input) => (input.value = settings[input.dataset.field]));
  $("style-choices").replaceChildren(...pick.palette.map((s) => {
    const button = document.createElement("button");
    button.textContent = s.name;
    button.dataset.style = s.name;
    button.addEventListener("click", () => { pick.style = s.name; $("loop-status").textContent = ""; renderPick(); showState(); });
    return button;
  }));
  $("loop").classList.remove("hidden");
  $("liked-block").classList.add("hidden");
  $("loop-status").textContent = "";
  renderPick();
  await showState();
}

// The shopper's latest word on the current style, on the buttons: "Liked" / "Not for me" pressed, "Undo" to take
// it back; the liked block shows only while the style is liked.
async function showState() {
  const styles = (await api(`/users/${encodeURIComponent(pick.user)}/styles?k=50`)).body;
  pick.states = Object.fromEntries(styles.map((s) => [s.name, s.state]));
  const state = pick.states[pick.style] || null;
  $("like").classList.toggle("pressed", state === "liked");
  $("like").textContent = state === "liked" ? "Liked ✓" : "Like this style";
  $("dislike").classList.toggle("pressed", state === "disliked");
  $("dislike").textContent = state === "disliked" ? "Not for me ✓" : "Not for me";
  $("undo").classList.toggle("hidden", !state);
  if (state !== "liked") $("liked-block").classList.add("hidden");
  return styles;
}

async function saveAdjustments() {
  const settings = {};
  document.querySelectorAll("#adjustments input").forEach((input) => (settings[input.dataset.field] = Number(input.value)));
  await api(`/users/${encodeURIComponent(pick.user)}/render-settings`, {
    method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(settings),
  });
  renderPick();
}

async function styleFeedback(event) {
  const { user, style } = pick;
  await api("/events", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user_id: user, style, event }),
  });
  const styles = await showState();
  showStylesLine(styles.slice(0, 3));
  if (event === "style_like") {
    $("loop-status").textContent = `you like ${style}: more in this style below`;
    await showLiked();
  } else if (event === "style_dislike") {
    $("liked-block").classList.add("hidden");
    const next = styles.find((s) => s.name !== style && s.state !== "disliked");
    $("loop-status").textContent = `noted: not ${style}` + (next ? `; trying ${next.name}` : "");
    if (next) { pick.style = next.name; renderPick(); await showState(); }
  } else {
    $("liked-block").classList.add("hidden");
    $("loop-status").textContent = `taken back: ${style} is neither liked nor disliked`;
  }
}

async function showLiked() {
  const { user, style } = pick;
  $("liked-title").textContent = `In the style you liked: ${style}`;
  const params = new URLSearchParams({ k: "12", facet: facetOf("liked-facet") });
  const found = (await api(`/users/${encodeURIComponent(user)}/styles/${encodeURIComponent(style)}/items?${params}`)).body;
  fill($("liked-items"), found.items);
  $("liked-block").classList.remove("hidden");
}

async function loadShopper() {
  const user = $("shopper").value;
  if (!user) return;
  const category = $("feed-category").value;
  const feed = (await api(`/users/${encodeURIComponent(user)}/feed?k=12${category ? `&category=${category}` : ""}`)).body;
  fill($("feed"), feed.items);
  const styles = (await api(`/users/${encodeURIComponent(user)}/styles`)).body;
  showStylesLine(styles);
  // The pick in the shopper's style renders at once: a fast render is answered inline (no queued job). It is a
  // product they do not have yet: the nearest to their style, which leaves out what they bought.
  if (styles.length) {
    const mine = (await api(`/users/${encodeURIComponent(user)}/styles/${encodeURIComponent(styles[0].name)}/items?k=1`)).body;
    const pickItem = mine.items[0]?.item.id;
    if (pickItem) await startLoop(user, pickItem, styles[0].name);
  }
}

async function showItem(itemId, view = "merch") {
  const where = view === "shopper" ? "product" : "item";
  selectView(view);
  const item = (await api(`/items/${encodeURIComponent(itemId)}`)).body;
  $(`${where}-detail`).classList.remove("hidden");
  $(`${where}-title`).textContent = view === "shopper" ? item.title : `${item.title} (${item.id})`;
  $(`${where}-image`).src = item.image_url || "";
  $(`${where}-detail`).dataset.itemId = item.id;
  if (view === "merch") $("try-result").replaceChildren();
  await showSimilar(where);
  if (view === "shopper") $("product-detail").scrollIntoView({ behavior: "smooth" });
}

async function showSimilar(where) {
  const itemId = $(`${where}-detail`).dataset.itemId;
  const target = $(where === "product" ? "product-similar" : "similar");
  const params = new URLSearchParams({ k: "12", facet: facetOf(`${where}-facet`) });
  if (where === "product" && $("shopper").value) params.set("user_id", $("shopper").value);
  try {
    fill(target, (await api(`/items/${encodeURIComponent(itemId)}/similar?${params}`)).body.items);
  } catch (error) {
    target.textContent = error.message;
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
  pick.palette = styles;
  // each style renders with the renderer measured to carry it (BENCHMARKS.md, issue 22): say which
  $("try-style").replaceChildren(...styles.map((s) => new Option(`${s.name} (${s.renderer})`, s.name)));
  document.querySelectorAll("#adjustments input").forEach((input) => input.addEventListener("change", saveAdjustments));
  $("like").addEventListener("click", () => styleFeedback("style_like"));
  $("dislike").addEventListener("click", () => styleFeedback("style_dislike"));
  $("undo").addEventListener("click", () => styleFeedback("style_clear"));
  $("liked-facet").addEventListener("change", showLiked);
  $("item-facet").addEventListener("change", () => showSimilar("item"));
  $("product-facet").addEventListener("change", () => showSimilar("product"));
  $("upload-facet").addEventListener("change", () => $("upload-form").requestSubmit());
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
    form.append("facet", facetOf("upload-facet"));
    if ($("shopper").value) form.append("user_id", $("shopper").value);
    const shown = $("upload-photo");
    if (shown.src) URL.revokeObjectURL(shown.src);
    shown.src = URL.createObjectURL(file);
    $("upload-preview").classList.remove("hidden");
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
