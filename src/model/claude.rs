//! Analysis of a Claude Code JSONL transcript (`~/.claude/projects/…/<session>.jsonl`)
//! for `git entire attach`: session id, first prompt, turn count, model,
//! token usage, creation time and the files the agent edited.
//!
//! # Input
//!
//! One JSON object per line (`\n`-separated; `\r\n` is fine). Blank lines are
//! ignored. Lines that do not parse as a JSON object (a partial last line
//! while Claude Code is still writing, say) are skipped, as upstream does, as
//! long as at least one line parses.
//!
//! # Rules
//!
//! - **`session_id`**: the `sessionId` of the **last** line that has one. A
//!   resumed or plan-then-implement session starts with lines copied from the
//!   earlier session (its id) and continues under its own id, which is also the
//!   file name and what upstream records. (Older Entire versions recorded
//!   `YYYY-MM-DD-<sessionId>`; this is the bare id Claude Code writes.)
//! - **`created_at`**: the first `timestamp` string of any line, verbatim.
//! - **Prompts** come from lines with `"type": "user"`, skipping lines marked
//!   `isMeta`, `isCompactSummary`, `isVisibleInTranscriptOnly` or
//!   `isSidechain` (skill bodies, caveats, compaction summaries, subagent
//!   traffic). The text is `message.content` when it is a string, otherwise the
//!   `text` blocks of the content array joined by a blank line (tool_result-only
//!   entries have none). Then, as upstream's `StripIDEContextTags` does,
//!   `<ide_…>…</ide_…>` blocks and the wrapper blocks `local-command-caveat`,
//!   `system-reminder`, `command-name`, `command-message`, `command-args`,
//!   `local-command-stdout` are removed and the rest trimmed. An empty result
//!   (slash-command wrappers, `/exit` output) is not a prompt. Claude Code's
//!   `[Request interrupted by user…]` notes are not prompts either. (Upstream
//!   checks neither the flags nor the interruption note, so it counts skill
//!   bodies, compaction summaries and interruptions as turns.)
//! - **`turn_count`**: the number of prompts, less those upstream's
//!   `IsInjectedPrompt` calls agent-injected (leading `<environment_context>`,
//!   `# AGENTS.md`, …). **`first_prompt`** is the first counted prompt, or
//!   failing that the first injected one (upstream's fallback).
//! - **`model`**: the first non-empty `message.model` of an assistant line,
//!   ignoring Claude Code's `<synthetic>` placeholder (upstream takes the first).
//! - **`tokens`**: assistant lines with a non-empty `message.id`. Claude Code
//!   writes one line per content block and repeats the message's `usage` on
//!   each, so usage is taken once per id, from the id's **last** line, then
//!   summed; `api_call_count` is the number of distinct ids. (Upstream keeps
//!   the line with the highest `output_tokens`; on the 3,396 ids in the sample
//!   data both choices agree.) Subagent transcripts are not read.
//! - **`files_touched`**: for each `tool_use` block of an assistant line whose
//!   `name` is one of [`FILE_MODIFICATION_TOOLS`], `input.file_path`, or
//!   `input.notebook_path` when that is absent. Paths under `repo_root` are
//!   made relative to it (a lexical prefix test: pass a canonical root if the
//!   transcript's paths are canonical); others are kept as written. First-seen
//!   order, no duplicates (after making relative).
//!
//! # Failure modes
//!
//! [`analyze`] fails only on input that is not a transcript at all: larger
//! than [`MAX_TRANSCRIPT_BYTES`], containing a NUL byte, empty, or with no
//! line that parses as a JSON object. Missing or oddly typed fields are never
//! errors; they just contribute nothing.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[cfg(test)]
mod tests;

/// Largest transcript [`analyze`] accepts. Callers should check the file size
/// before reading it.
pub const MAX_TRANSCRIPT_BYTES: u64 = 64 << 20;

/// Tool names whose `tool_use` input names a file the agent wrote.
/// The `mcp__acp__*` names are Claude Code run through the Agent Client
/// Protocol (Zed); upstream lists them too.
pub const FILE_MODIFICATION_TOOLS: &[&str] = &[
    "Edit",
    "Write",
    "MultiEdit",
    "NotebookEdit",
    "mcp__acp__Edit",
    "mcp__acp__Write",
];

/// Tags whose whole block (`<tag …>…</tag>`) is removed from prompt text.
const WRAPPER_TAGS: &[&str] = &[
    "local-command-caveat",
    "system-reminder",
    "command-name",
    "command-message",
    "command-args",
    "local-command-stdout",
];

/// Prefixes of agent-injected user text (upstream's `injectedPromptPrefixes`).
const INJECTED_PREFIXES: &[&str] = &[
    "# AGENTS.md",
    "<environment_context>",
    "<permissions",
    "<collaboration_mode>",
    "<skills_instructions>",
    "<apps_instructions>",
    "<plugins_instructions>",
    "<recommended_plugins>",
    "<user_action>",
    "<subagent_notification>",
    "<turn_aborted>",
];

/// User-side flags that mark a line as not typed by the user.
const NON_PROMPT_FLAGS: &[&str] = &[
    "isMeta",
    "isCompactSummary",
    "isVisibleInTranscriptOnly",
    "isSidechain",
];

/// What [`analyze`] found in a transcript.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Analysis {
    pub session_id: Option<String>,
    pub first_prompt: Option<String>,
    pub turn_count: u32,
    pub model: Option<String>,
    pub tokens: TokenUsage,
    /// First `timestamp` in the transcript, verbatim (RFC 3339).
    pub created_at: Option<String>,
    /// Files written by Edit/Write/MultiEdit/NotebookEdit, relative to the repo
    /// root when under it; first-seen order, deduplicated.
    pub files_touched: Vec<String>,
}

/// Token usage, serialized with the field names of upstream's session
/// metadata `token_usage` object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub cache_creation_tokens: u64,
    #[serde(default)]
    pub cache_read_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub api_call_count: u64,
}

/// Why a byte string is not an analysable transcript.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("transcript is {size} bytes, over the {max}-byte limit")]
    TooLarge { size: u64, max: u64 },
    #[error("transcript has a NUL byte at offset {offset}")]
    NulByte { offset: usize },
    #[error("transcript is empty")]
    Empty,
    #[error("transcript is not JSONL: line {line} is not a JSON object")]
    NotJsonl { line: usize },
}

/// Analyses a Claude Code transcript. `repo_root` makes `files_touched`
/// relative (see the module docs).
pub fn analyze(raw: &[u8], repo_root: Option<&Path>) -> Result<Analysis, Error> {
    let size = raw.len() as u64;
    if size > MAX_TRANSCRIPT_BYTES {
        return Err(Error::TooLarge {
            size,
            max: MAX_TRANSCRIPT_BYTES,
        });
    }
    if let Some(offset) = raw.iter().position(|&b| b == 0) {
        return Err(Error::NulByte { offset });
    }
    let mut acc = Accumulator::new(repo_root);
    let mut first_bad = None;
    let mut parsed_any = false;
    for (idx, line) in raw.split(|&b| b == b'\n').enumerate() {
        if line.trim_ascii().is_empty() {
            continue;
        }
        match serde_json::from_slice::<Map<String, Value>>(line) {
            Ok(obj) => {
                parsed_any = true;
                acc.line(&obj);
            }
            Err(_) => {
                first_bad.get_or_insert(idx + 1);
            }
        }
    }
    if !parsed_any {
        return Err(first_bad.map_or(Error::Empty, |line| Error::NotJsonl { line }));
    }
    Ok(acc.finish())
}

/// Per-message usage as Claude Code writes it.
#[derive(Debug, Clone, Copy, Default)]
struct MessageUsage {
    input: u64,
    cache_creation: u64,
    cache_read: u64,
    output: u64,
}

/// State gathered while walking the lines.
struct Accumulator<'a> {
    repo_root: Option<&'a Path>,
    session_id: Option<String>,
    created_at: Option<String>,
    model: Option<String>,
    first_prompt: Option<String>,
    first_injected: Option<String>,
    turn_count: u32,
    usage: HashMap<String, MessageUsage>,
    files: Vec<String>,
    seen_files: HashSet<String>,
}

impl<'a> Accumulator<'a> {
    fn new(repo_root: Option<&'a Path>) -> Self {
        Accumulator {
            repo_root,
            session_id: None,
            created_at: None,
            model: None,
            first_prompt: None,
            first_injected: None,
            turn_count: 0,
            usage: HashMap::new(),
            files: Vec::new(),
            seen_files: HashSet::new(),
        }
    }

    fn line(&mut self, obj: &Map<String, Value>) {
        if let Some(id) = non_empty_str(obj.get("sessionId")) {
            if self.session_id.as_deref() != Some(id) {
                self.session_id = Some(id.to_owned());
            }
        }
        if self.created_at.is_none() {
            self.created_at = non_empty_str(obj.get("timestamp")).map(str::to_owned);
        }
        let message = obj.get("message").and_then(Value::as_object);
        match (non_empty_str(obj.get("type")), message) {
            (Some("user"), Some(msg)) => self.user(obj, msg),
            (Some("assistant"), Some(msg)) => self.assistant(msg),
            _ => {}
        }
    }

    fn user(&mut self, obj: &Map<String, Value>, msg: &Map<String, Value>) {
        let flagged = NON_PROMPT_FLAGS
            .iter()
            .any(|flag| obj.get(*flag).and_then(Value::as_bool) == Some(true));
        if flagged {
            return;
        }
        let Some(prompt) = user_prompt_text(msg.get("content")) else {
            return;
        };
        if prompt.starts_with("[Request interrupted by user") {
            return;
        }
        if is_injected_prompt(&prompt) {
            self.first_injected.get_or_insert(prompt);
            return;
        }
        self.turn_count = self.turn_count.saturating_add(1);
        self.first_prompt.get_or_insert(prompt);
    }

    fn assistant(&mut self, msg: &Map<String, Value>) {
        if self.model.is_none() {
            self.model = non_empty_str(msg.get("model"))
                .filter(|m| *m != "<synthetic>")
                .map(str::to_owned);
        }
        if let Some(id) = non_empty_str(msg.get("id")) {
            let usage = msg
                .get("usage")
                .and_then(Value::as_object)
                .map(message_usage)
                .unwrap_or_default();
            self.usage.insert(id.to_owned(), usage);
        }
        let Some(blocks) = msg.get("content").and_then(Value::as_array) else {
            return;
        };
        for block in blocks.iter().filter_map(Value::as_object) {
            if let Some(path) = modified_file(block) {
                self.add_file(path);
            }
        }
    }

    fn add_file(&mut self, path: &str) {
        let path = relativize(path, self.repo_root);
        if self.seen_files.insert(path.clone()) {
            self.files.push(path);
        }
    }

    fn finish(self) -> Analysis {
        let mut tokens = TokenUsage {
            api_call_count: self.usage.len() as u64,
            ..TokenUsage::default()
        };
        for u in self.usage.values() {
            tokens.input_tokens = tokens.input_tokens.saturating_add(u.input);
            tokens.cache_creation_tokens = tokens
                .cache_creation_tokens
                .saturating_add(u.cache_creation);
            tokens.cache_read_tokens = tokens.cache_read_tokens.saturating_add(u.cache_read);
            tokens.output_tokens = tokens.output_tokens.saturating_add(u.output);
        }
        Analysis {
            session_id: self.session_id,
            first_prompt: self.first_prompt.or(self.first_injected),
            turn_count: self.turn_count,
            model: self.model,
            tokens,
            created_at: self.created_at,
            files_touched: self.files,
        }
    }
}

fn non_empty_str(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn message_usage(u: &Map<String, Value>) -> MessageUsage {
    let n = |key: &str| u.get(key).and_then(Value::as_u64).unwrap_or(0);
    MessageUsage {
        input: n("input_tokens"),
        cache_creation: n("cache_creation_input_tokens"),
        cache_read: n("cache_read_input_tokens"),
        output: n("output_tokens"),
    }
}

/// The file path of a file-modifying `tool_use` block, if it is one.
fn modified_file(block: &Map<String, Value>) -> Option<&str> {
    if non_empty_str(block.get("type")) != Some("tool_use") {
        return None;
    }
    let name = non_empty_str(block.get("name"))?;
    if !FILE_MODIFICATION_TOOLS.contains(&name) {
        return None;
    }
    let input = block.get("input").and_then(Value::as_object)?;
    non_empty_str(input.get("file_path")).or_else(|| non_empty_str(input.get("notebook_path")))
}

/// `path` relative to `root` when it lies under it (lexically), else unchanged.
fn relativize(path: &str, root: Option<&Path>) -> String {
    let relative = root
        .and_then(|root| Path::new(path).strip_prefix(root).ok())
        .and_then(Path::to_str)
        .filter(|rel| !rel.is_empty());
    relative.unwrap_or(path).to_owned()
}

/// The user-typed text of a user message's `content`, or `None` if there is none.
fn user_prompt_text(content: Option<&Value>) -> Option<String> {
    let raw = match content? {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => {
            let texts: Vec<&str> = blocks
                .iter()
                .filter_map(Value::as_object)
                .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect();
            if texts.is_empty() {
                return None;
            }
            texts.join("\n\n")
        }
        _ => return None,
    };
    let stripped = strip_context_tags(&raw);
    (!stripped.is_empty()).then_some(stripped)
}

/// Removes IDE and wrapper tag blocks and trims (upstream's `StripIDEContextTags`).
fn strip_context_tags(text: &str) -> String {
    let mut out = strip_blocks(text, "<ide_", "</ide_");
    for tag in WRAPPER_TAGS {
        out = strip_blocks(&out, &format!("<{tag}"), &format!("</{tag}"));
    }
    out.trim().to_owned()
}

/// Removes every block `open[^>]*>` … `close[^>]*>` (shortest body), like the
/// regex `(?s)<open[^>]*>.*?<close[^>]*>`.
fn strip_blocks(text: &str, open: &str, close: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(end) = block_at(rest, open, close) {
        out.push_str(&rest[..end.0]);
        rest = &rest[end.1..];
    }
    out.push_str(rest);
    out
}

/// Byte range `(start, end)` of the first complete block in `text`.
fn block_at(text: &str, open: &str, close: &str) -> Option<(usize, usize)> {
    let start = text.find(open)?;
    let open_end = start + open.len() + text[start + open.len()..].find('>')? + 1;
    let close_start = open_end + text[open_end..].find(close)?;
    let after = close_start + close.len();
    let end = after + text[after..].find('>')? + 1;
    Some((start, end))
}

/// Upstream's `IsInjectedPrompt`: agent-injected text, not user-authored.
fn is_injected_prompt(text: &str) -> bool {
    let trimmed = text.trim();
    INJECTED_PREFIXES.iter().any(|p| trimmed.starts_with(p))
        || (trimmed.starts_with("<INSTRUCTIONS>") && trimmed.contains("AGENTS.md instructions"))
}
