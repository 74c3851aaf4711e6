// A list read a page at a time: the first page at once, the next ones as the
// "more" button scrolls into view (or is clicked). Only the rows of pages
// read are in the DOM, so a list of 10,000 items opens as fast as one of 50.

import { h } from "../dom.js";

export class Pager {
  // fetch(token) -> page; items(page) -> rows' data; row(item) -> element;
  // body: where rows go; after: the element the "more" button follows;
  // empty() -> what to show without items; fail(err).
  constructor({ fetch, items, row, body, after, empty, fail, onPage }) {
    Object.assign(this, { fetchPage: fetch, itemsOf: items, row, body, empty, fail, onPage });
    this.token = "";
    this.pages = 0;
    this.generation = 0;
    this.loading = false;
    this.button = h("button", { type: "button", onclick: () => this.more() }, "Load more");
    this.moreBox = h("div.more", { hidden: true }, this.button);
    this.emptyBox = h("div", { hidden: true });
    after.after(this.emptyBox, this.moreBox);
    this.observer = new IntersectionObserver((seen) => {
      if (seen.some((e) => e.isIntersecting)) this.more();
    });
    this.observer.observe(this.button);
  }

  // Read the first page again; `quiet` keeps the rows on screen until it arrives.
  async reset(quiet = false) {
    const generation = ++this.generation;
    this.token = "";
    this.pages = 0;
    if (!quiet) this.body.replaceChildren();
    this.loading = true;
    try {
      const page = await this.fetchPage("");
      if (generation !== this.generation) return;
      this.body.replaceChildren();
      this.add(page);
    } catch (err) {
      if (generation === this.generation) this.fail(err);
    } finally {
      if (generation === this.generation) this.loading = false;
    }
  }

  async more() {
    if (this.loading || !this.token) return;
    const generation = this.generation;
    this.loading = true;
    this.button.textContent = "Loading…";
    try {
      const page = await this.fetchPage(this.token);
      if (generation !== this.generation) return;
      this.add(page);
    } catch (err) {
      if (generation === this.generation) this.fail(err);
    } finally {
      if (generation === this.generation) this.loading = false;
      this.button.textContent = "Load more";
    }
  }

  add(page) {
    const items = this.itemsOf(page);
    const fragment = document.createDocumentFragment();
    for (const item of items) fragment.append(this.row(item));
    this.body.append(fragment);
    this.pages++;
    this.token = page.next_page_token || "";
    this.moreBox.hidden = !this.token;
    const none = this.pages === 1 && !items.length;
    this.emptyBox.hidden = !none;
    if (none) this.emptyBox.replaceChildren(this.empty());
    if (this.onPage) this.onPage(page, items);
    // A short first page on a tall screen: keep reading until the button leaves the view.
    if (this.token) requestAnimationFrame(() => {
      const r = this.button.getBoundingClientRect();
      if (r.top < innerHeight) this.more();
    });
  }

  stop() {
    this.generation++;
    this.observer.disconnect();
  }
}
