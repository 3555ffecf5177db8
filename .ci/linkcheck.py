#!/usr/bin/env python3
"""Checks the links of a built mdBook.

Usage: python3 .ci/linkcheck.py [BOOK_DIR]   (default: docs/book)

Every .html file under BOOK_DIR is parsed. Each relative href and src must
name a file inside BOOK_DIR that exists, and each #fragment, on the same
page or another, must be an id (or an <a name>) in the page it points to.
Links with a scheme (https:, mailto:, ...) are not followed. A link that
leaves BOOK_DIR is broken: the built book is all that gets published, so a
path into the repository (a source file, a bench script) belongs in
backticks, not in a link.

Prints each broken link with the page it is on, then one line,
"N links checked, M broken", and exits 1 when M is not 0.
"""

import html.parser
import os
import sys
import urllib.parse

# Attributes that point at another resource, by element.
LINK_ATTRIBUTES = {
    "a": ("href",),
    "area": ("href",),
    "link": ("href",),
    "img": ("src",),
    "script": ("src",),
    "iframe": ("src",),
    "source": ("src",),
    "video": ("src", "poster"),
    "audio": ("src",),
    "embed": ("src",),
    "object": ("data",),
}


class Page(html.parser.HTMLParser):
    """The ids of one page and the links on it."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids = set()
        self.links = []  # (line, url)
        self.base = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.add(attributes["id"])
        if tag == "a" and attributes.get("name"):
            self.ids.add(attributes["name"])
        if tag == "base" and attributes.get("href") is not None:
            self.base = attributes["href"]
        for name in LINK_ATTRIBUTES.get(tag, ()):
            value = attributes.get(name)
            if value is not None:
                self.links.append((self.getpos()[0], value))



def parse(path):
    page = Page()
    with open(path, encoding="utf-8") as file:
        page.feed(file.read())
    page.close()
    return page


def check(book):
    book = os.path.realpath(book)
    pages = {}
    for folder, _, files in os.walk(book):
        for name in files:
            if name.endswith(".html"):
                path = os.path.join(folder, name)
                pages[path] = parse(path)

    def ids_of(path):
        if path not in pages:
            pages[path] = parse(path)
        return pages[path].ids

    checked = 0
    broken = []
    for path in sorted(pages):
        page = pages[path]
        relative_page = os.path.relpath(path, book)
        folder = os.path.dirname(path)
        if page.base is not None and page.base.startswith("/"):
            # mdBook's 404.html, served for any missing path, writes its
            # links against the site's root through <base href="/">: the
            # book's root, here.
            folder = os.path.join(book, page.base.lstrip("/"))
        for line, url in page.links:
            parts = urllib.parse.urlsplit(url)
            if parts.scheme or parts.netloc:
                continue  # https:, mailto:, //host: not ours to check
            checked += 1
            where = f"{relative_page}:{line}: {url}"
            target_path = urllib.parse.unquote(parts.path)
            if not target_path:
                # The page itself, also under a <base>: on 404.html these
                # are mdBook's links from each heading to its own id.
                target = path
            elif target_path.startswith("/"):
                target = os.path.join(book, target_path.lstrip("/"))
            else:
                target = os.path.join(folder, target_path)
            target = os.path.realpath(target)
            if target != book and not target.startswith(book + os.sep):
                broken.append(f"{where}: leaves the book")
                continue
            if os.path.isdir(target):
                target = os.path.join(target, "index.html")
            if not os.path.isfile(target):
                broken.append(f"{where}: no such file")
                continue
            fragment = urllib.parse.unquote(parts.fragment)
            if fragment and target.endswith(".html"):
                if fragment not in ids_of(target):
                    shown = os.path.relpath(target, book)
                    broken.append(f"{where}: no id {fragment!r} in {shown}")
    return checked, broken


def main(argv):
    book = argv[1] if len(argv) > 1 else "docs/book"
    if not os.path.isdir(book):
        print(f"{book}: no such folder (build the book first: mdbook build docs)")
        return 1
    checked, broken = check(book)
    for line in broken:
        print(line)
    print(f"{checked} links checked, {len(broken)} broken")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
