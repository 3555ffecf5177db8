//! The floors of `src/`, read from its `use crate::` paths: `platform/`
//! imports no capability, a capability reaches another only through its
//! face (the folder's root, `service.rs` or `tx.rs`), nothing imports a floor
//! above its own, and no circle joins files or folders.
//!
//! `cargo test --test architecture -- --nocapture` prints the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

const CAPABILITIES: [&str; 8] = [
    "accounts",
    "articles",
    "access",
    "newsletter",
    "trials",
    "organizations",
    "inquiries",
    "digest",
];

/// The floor a top-level module stands on; a file may import its own floor's
/// modules and those below.
fn floor(top: &str) -> Option<u8> {
    match top {
        "platform" => Some(0),
        _ if CAPABILITIES.contains(&top) => Some(1),
        "flows" => Some(2),
        "state" => Some(3),
        "http" | "jobs" => Some(4),
        "app" => Some(5),
        "cli" => Some(6),
        _ => None,
    }
}

/// A capability's published face: what another capability may import.
fn is_face(module: &[String]) -> bool {
    match module {
        [_] => true,
        [_, part] => part == "service" || part == "tx",
        _ => false,
    }
}

/// A module path from a file's path under `src/`: `platform/mail/mod.rs` is
/// `platform::mail`, `lib.rs` the crate itself.
fn module_of(file: &str) -> Vec<String> {
    let trimmed = file.trim_end_matches(".rs");
    let mut parts: Vec<String> = trimmed.split('/').map(str::to_owned).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The source without comments, string and character literals, so that a
/// path in a doc comment or a message is not taken for an import.
fn code_only(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < chars.len() {
        let rest = &chars[i..];
        match rest {
            ['/', '/', ..] => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            ['/', '*', ..] => {
                i += 2;
                while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                    i += 1;
                }
                i += 2;
            }
            ['r', '#' | '"', ..] if !chars.get(i.wrapping_sub(1)).is_some_and(|c| ident(*c)) => {
                let hashes = rest[1..].iter().take_while(|c| **c == '#').count();
                if rest.get(1 + hashes) != Some(&'"') {
                    out.push('r');
                    i += 1;
                    continue;
                }
                i += 2 + hashes;
                while i < chars.len() {
                    if chars[i] == '"' && chars[i + 1..].iter().take(hashes).all(|c| *c == '#') {
                        i += 1 + hashes;
                        break;
                    }
                    i += 1;
                }
                out.push_str("\"\"");
            }
            ['"', ..] => {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
            }
            ['\'', '\\', ..] => {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            }
            ['\'', _, '\'', ..] => i += 3,
            [c, ..] => {
                out.push(*c);
                i += 1;
            }
            [] => unreachable!(),
        }
    }
    out
}

fn ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Every path the code names from the crate's root (`crate::…`) or from a
/// parent (`super::…`, as `(levels up, path)`): those in `use` trees, braces
/// expanded, and those written inline.
fn named_paths(code: &str) -> Vec<(Option<usize>, Vec<String>)> {
    let mut paths: Vec<(Option<usize>, Vec<String>)> = paths_after(code, "crate::")
        .into_iter()
        .map(|path| (None, path))
        .collect();
    for mut path in paths_after(code, "super::") {
        let mut up = 1;
        while path.first().is_some_and(|s| s == "super") {
            path.remove(0);
            up += 1;
        }
        paths.push((Some(up), path));
    }
    paths
}

/// The paths that follow `anchor` where it starts a path.
fn paths_after(code: &str, anchor: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(anchor) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + anchor.len()..];
        if before.is_some_and(|c| ident(c) || c == ':') {
            continue;
        }
        let end = tree_end(rest);
        expand(&rest[..end], Vec::new(), &mut paths);
        rest = &rest[end..];
    }
    paths
}

/// Where the path or use tree that starts `text` ends.
fn tree_end(text: &str) -> usize {
    let mut depth = 0usize;
    for (at, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return at,
            '}' => depth -= 1,
            _ if depth > 0 => {}
            c if ident(c)
                || c == ':'
                || c.is_whitespace() && text[at..].trim_start().starts_with('{') => {}
            _ => return at,
        }
    }
    text.len()
}

/// `a::{b, c::{d, e}}` under `prefix`: `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let mut base = prefix;
        base.extend(segments(&tree[..open]));
        let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        for item in split_top_level(inner) {
            expand(item, base.clone(), out);
        }
    } else {
        let mut path = prefix;
        path.extend(segments(tree.split(" as ").next().unwrap_or_default()));
        if !path.is_empty() {
            out.push(path);
        }
    }
}

fn segments(text: &str) -> Vec<String> {
    text.split("::")
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "self" && *s != "*")
        .map(str::to_owned)
        .collect()
}

fn split_top_level(text: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (at, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&text[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    items.push(&text[start..]);
    items
}

/// Files as module paths, and the modules each imports (a path resolved to
/// the longest module it names).
struct Graph {
    edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
}

impl Graph {
    fn new(files: &[(String, String)]) -> Self {
        let modules: BTreeSet<Vec<String>> = files.iter().map(|(f, _)| module_of(f)).collect();
        let resolve = |path: &[String]| {
            (1..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|m| modules.contains(m))
        };
        let mut edges = BTreeMap::new();
        for (file, source) in files {
            let from = module_of(file);
            let code = code_only(source);
            let mut named: Vec<(bool, Vec<String>)> = named_paths(&code)
                .into_iter()
                .map(|(up, path)| {
                    let base = &from[..from.len().saturating_sub(up.unwrap_or(from.len()))];
                    (up.is_some(), [base, &path].concat())
                })
                .collect();
            // `use crate::access;` and then `access::store::find(…)`.
            let aliases: BTreeMap<String, Vec<String>> = named
                .iter()
                .filter(|(_, path)| modules.contains(path))
                .filter_map(|(_, path)| Some((path.last()?.clone(), path.clone())))
                .collect();
            for (alias, module) in aliases {
                for path in paths_after(&code, &format!("{alias}::")) {
                    named.push((false, [module.as_slice(), &path].concat()));
                }
            }
            let targets: BTreeSet<Vec<String>> = named
                .into_iter()
                .filter_map(|(via_super, path)| {
                    let to = resolve(&path)?;
                    // `super::` from a test module inside a file names the file's own items.
                    let ancestor = via_super && from.starts_with(&to);
                    (!ancestor && to != from).then_some(to)
                })
                .collect();
            edges.insert(from, targets);
        }
        Graph { edges }
    }

    fn upward_imports(&self) -> Vec<String> {
        let mut found = Vec::new();
        for (from, targets) in &self.edges {
            let Some(from_top) = from.first() else {
                continue;
            };
            for to in targets {
                let Some(to_top) = to.first() else { continue };
                if let Some(reason) = breach(from_top, to_top, to) {
                    found.push(format!("{} imports {}: {reason}", name(from), name(to)));
                }
            }
        }
        found
    }

    /// Strongly connected groups of more than one node, of the graph with
    /// each node cut to its first `depth` segments.
    fn circles(&self, depth: usize, within: Option<&str>) -> Vec<Vec<String>> {
        let cut = |m: &Vec<String>| m.iter().take(depth).cloned().collect::<Vec<_>>();
        let inside = |m: &Vec<String>| within.is_none_or(|w| m.first().is_some_and(|t| t == w));
        let mut graph: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
        for (from, targets) in self
            .edges
            .iter()
            .filter(|(f, _)| inside(f) && !f.is_empty())
        {
            let entry = graph.entry(cut(from)).or_default();
            entry.extend(
                targets
                    .iter()
                    .filter(|t| inside(t) && !t.is_empty())
                    .map(cut),
            );
        }
        strongly_connected(&graph)
            .into_iter()
            .filter(|group| group.len() > 1)
            .map(|group| group.iter().map(|m| name(m)).collect())
            .collect()
    }

    fn folder_edges(&self) -> BTreeMap<(String, String), usize> {
        let mut counts = BTreeMap::new();
        for (from, targets) in &self.edges {
            for to in targets {
                if let (Some(a), Some(b)) = (from.first(), to.first()) {
                    if a != b {
                        *counts.entry((a.clone(), b.clone())).or_insert(0) += 1;
                    }
                }
            }
        }
        counts
    }
}

fn name(module: &[String]) -> String {
    if module.is_empty() {
        "crate".to_owned()
    } else {
        module.join("::")
    }
}

/// Why importing `to` from a file under `from_top` breaks a floor, if it does.
fn breach(from_top: &str, to_top: &str, to: &[String]) -> Option<String> {
    if from_top == to_top {
        return None;
    }
    let (from_floor, to_floor) = (floor(from_top)?, floor(to_top)?);
    if to_floor > from_floor {
        return Some(format!("{to_top} stands above {from_top}"));
    }
    let capabilities = from_floor == 1 && to_floor == 1;
    (capabilities && !is_face(to)).then(|| {
        "a capability reaches another only through its root, service.rs or tx.rs".to_owned()
    })
}

/// Tarjan's algorithm, iterative over the nodes.
fn strongly_connected(
    graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
) -> Vec<Vec<Vec<String>>> {
    struct State<'a> {
        graph: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<&'a Vec<String>, (usize, usize)>,
        stack: Vec<&'a Vec<String>>,
        on_stack: BTreeSet<&'a Vec<String>>,
        groups: Vec<Vec<Vec<String>>>,
    }
    fn visit<'a>(state: &mut State<'a>, node: &'a Vec<String>) {
        let n = state.index.len();
        state.index.insert(node, (n, n));
        state.stack.push(node);
        state.on_stack.insert(node);
        for next in state.graph.get(node).into_iter().flatten() {
            if !state.graph.contains_key(next) {
                continue;
            }
            if !state.index.contains_key(next) {
                visit(state, next);
                let low = state.index[next].1;
                let entry = state.index.get_mut(node).expect("visited");
                entry.1 = entry.1.min(low);
            } else if state.on_stack.contains(next) {
                let other = state.index[next].0;
                let entry = state.index.get_mut(node).expect("visited");
                entry.1 = entry.1.min(other);
            }
        }
        let (own, low) = state.index[node];
        if own == low {
            let mut group = Vec::new();
            while let Some(member) = state.stack.pop() {
                state.on_stack.remove(member);
                group.push(member.clone());
                if member == node {
                    break;
                }
            }
            state.groups.push(group);
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        groups: Vec::new(),
    };
    for node in graph.keys() {
        if !state.index.contains_key(node) {
            visit(&mut state, node);
        }
    }
    state.groups
}

/// Everything wrong with the tree, one line each.
fn violations(graph: &Graph) -> Vec<String> {
    let mut found = graph.upward_imports();
    let circles = [
        ("files", graph.circles(usize::MAX, None)),
        ("folders", graph.circles(1, None)),
        ("platform's folders", graph.circles(2, Some("platform"))),
    ];
    for (level, groups) in circles {
        for group in groups {
            found.push(format!("a circle between {level}: {}", group.join(" ↔ ")));
        }
    }
    found
}

fn source_files(root: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("a readable folder") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(root).expect("under src");
                let relative = relative.to_string_lossy().replace('\\', "/");
                if relative != "main.rs" {
                    let source = std::fs::read_to_string(&path).expect("a readable file");
                    files.push((relative, source));
                }
            }
        }
    }
    files
}

fn report(graph: &Graph) -> String {
    let mut text = String::from("imports between folders (files importing):\n");
    for ((from, to), count) in graph.folder_edges() {
        let _ = writeln!(text, "  {from} -> {to} ({count})");
    }
    text
}

#[test]
fn the_source_keeps_its_floors_and_has_no_circles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = source_files(&root);
    assert!(
        files.len() > 50,
        "found only {} files under src/",
        files.len()
    );
    let graph = Graph::new(&files);
    println!("{}", report(&graph));
    let found = violations(&graph);
    assert!(found.is_empty(), "{} breaches: {found:#?}", found.len());
}

fn tree(files: &[(&str, &str)]) -> Graph {
    let owned: Vec<(String, String)> = files
        .iter()
        .map(|(f, s)| ((*f).to_owned(), (*s).to_owned()))
        .collect();
    Graph::new(&owned)
}

const CLEAN: [(&str, &str); 5] = [
    ("lib.rs", "pub mod platform; pub mod newsletter; pub mod trials;"),
    ("platform/mod.rs", "pub mod error;"),
    ("platform/error.rs", "pub struct AppError;"),
    (
        "newsletter/service.rs",
        "use crate::platform::{error::AppError, self};\n// crate::trials::store in a comment\nconst S: &str = \"crate::trials::store\";",
    ),
    ("trials/service.rs", "use crate::{newsletter::service::Subscribe, platform::error::AppError};"),
];

#[test]
fn a_tree_that_keeps_its_floors_passes() {
    assert_eq!(violations(&tree(&CLEAN)), Vec::<String>::new());
}

#[test]
fn a_platform_file_that_imports_a_capability_fails() {
    let mut files = CLEAN.to_vec();
    files[2] = (
        "platform/error.rs",
        "fn f() { crate::trials::service::decide(); }",
    );
    let found = violations(&tree(&files));
    assert_eq!(
        found.first().map(String::as_str),
        Some("platform::error imports trials::service: trials stands above platform"),
        "{found:?}"
    );
}

#[test]
fn a_capability_that_reads_another_capabilitys_store_fails() {
    let mut files = CLEAN.to_vec();
    files.push(("newsletter/store.rs", ""));
    files[4] = (
        "trials/service.rs",
        "use crate::newsletter::{store::{self as s, x}, service};",
    );
    let found = violations(&tree(&files));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("trials::service imports newsletter::store"),
        "{found:?}"
    );
}

#[test]
fn a_store_reached_through_an_imported_module_fails() {
    let mut files = CLEAN.to_vec();
    files.extend([("newsletter/mod.rs", ""), ("newsletter/store.rs", "")]);
    files[4] = (
        "trials/service.rs",
        "use crate::newsletter;\nfn f() { newsletter::store::find(); }",
    );
    let found = violations(&tree(&files));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("trials::service imports newsletter::store"),
        "{found:?}"
    );
}

#[test]
fn a_circle_between_files_and_folders_fails() {
    let mut files = CLEAN.to_vec();
    files[3] = (
        "newsletter/service.rs",
        "use crate::trials::service::Decision;",
    );
    let found = violations(&tree(&files));
    assert_eq!(
        found,
        [
            "a circle between files: trials::service ↔ newsletter::service",
            "a circle between folders: trials ↔ newsletter",
        ]
    );
}

/// Functions whose length is a flat table: one arm per case, nothing to
/// name apart.
const FLAT_TABLES: [(&str, &str); 1] = [("platform/error.rs", "parts")];

/// The longest a function may be, from its `fn` line to its closing brace:
/// a screen.
const SCREEN: usize = 60;

/// The name of the function a line declares, if it declares one.
fn declared_fn(line: &str) -> Option<&str> {
    let mut rest = line.trim_start();
    for prefix in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "async ",
        "const ",
        "unsafe ",
    ] {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    let rest = rest.strip_prefix("async ").unwrap_or(rest);
    let name = rest.strip_prefix("fn ")?;
    let end = name.find(|c: char| !ident(c)).unwrap_or(name.len());
    Some(&name[..end])
}

/// `(file, function, lines)` of each function longer than a screen.
fn long_functions(files: &[(String, String)]) -> Vec<(String, String, usize)> {
    let mut long = Vec::new();
    for (file, source) in files {
        let lines: Vec<&str> = source.lines().collect();
        for (at, line) in lines.iter().enumerate() {
            let Some(name) = declared_fn(line) else {
                continue;
            };
            let indent = line.len() - line.trim_start().len();
            let Some(open) = (at..lines.len()).find(|&n| {
                let l = lines[n].trim_end();
                l.ends_with('{') || l.ends_with(';')
            }) else {
                continue;
            };
            if lines[open].trim_end().ends_with(';') {
                continue;
            }
            let close = (open + 1..lines.len()).find(|&n| {
                let l = lines[n];
                l.len() - l.trim_start().len() == indent && l.trim() == "}"
            });
            let length = close.map_or(lines.len(), |n| n + 1) - at;
            if length > SCREEN {
                long.push((file.clone(), name.to_owned(), length));
            }
        }
    }
    long.sort();
    long
}

#[test]
fn no_function_is_longer_than_a_screen_outside_flat_tables() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let long: Vec<String> = long_functions(&source_files(&root))
        .into_iter()
        .filter(|(file, name, _)| !FLAT_TABLES.contains(&(file.as_str(), name.as_str())))
        .map(|(file, name, lines)| format!("src/{file}: {name}, {lines} lines"))
        .collect();
    assert!(
        long.is_empty(),
        "{} functions over {SCREEN} lines: {long:#?}",
        long.len()
    );
}

#[test]
fn a_function_of_sixty_one_lines_is_found() {
    let body = "    step();\n".repeat(59);
    let source = format!("pub async fn long() {{\n{body}}}\nfn short() {{\n}}\n");
    let found = long_functions(&[("a.rs".to_owned(), source)]);
    assert_eq!(found, [("a.rs".to_owned(), "long".to_owned(), 61)]);
}
