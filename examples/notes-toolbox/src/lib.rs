//! The notes toolbox: notes in notebooks, kept in a SQLite file.
//!
//! - tools: `notes_list`, `notes_search`, `note_get` (read), `note_create`, `notes_import`
//!   (write; the import reports progress and stops when cancelled), `note_delete`;
//! - a resource per note, `note://NOTEBOOK/ID` (Markdown);
//! - a prompt, `summarize_notebook`.
//!
//! Who may do what is the policy's: each tool asks it about the notebook it touches with
//! a scope of this toolbox's own kind, `notebook` — `Request::scope("notebook", name,
//! access)`, granted in `rampart.toml` by `scopes = { notebook = [{ name = "team-*",
//! access = "read-write" }] }`. A search returns only notes of notebooks the caller may
//! read.

use std::sync::Mutex;

use rampart::{
    Access, CallContext, CatalogChanges, PromptArgument, PromptMessage, PromptOutput, PromptRole, PromptSpec, Request,
    ResourceContents, ResourceSpec, ResourceTemplateSpec, Routes, Structured, ToolAnnotations, ToolError, ToolRouter,
    ToolSpec, Toolbox, async_trait, schemars::JsonSchema,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::{
    Row, SqlitePool,
    sqlite::{SqliteConnectOptions, SqlitePoolOptions},
};
use tokio::sync::OnceCell;

/// The scope kind the policy grants notebooks under.
const NOTEBOOK: &str = "notebook";

/// The notes toolbox.
pub struct Notes {
    pool: SqlitePool,
    schema: OnceCell<()>,
    tools: ToolRouter<Notes>,
    changes: Mutex<Option<CatalogChanges>>,
}

/// `[toolbox.notes]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// The SQLite file (created if missing). Default `notes.db` in the working directory.
    #[serde(default = "default_database")]
    database: String,
}

fn default_database() -> String {
    "notes.db".into()
}

impl Notes {
    /// The toolbox from its `[toolbox.notes]` section (`null`: the defaults). Opens
    /// nothing yet: the file is created on the first call.
    ///
    /// # Errors
    /// A message for an unknown key or a value of the wrong type.
    pub fn from_settings(settings: &Value) -> Result<Self, String> {
        let settings: Settings = match settings {
            Value::Null => Settings { database: default_database() },
            other => serde_json::from_value(other.clone()).map_err(|error| error.to_string())?,
        };
        let options = SqliteConnectOptions::new().filename(&settings.database).create_if_missing(true);
        let pool = SqlitePoolOptions::new().max_connections(4).connect_lazy_with(options);
        Ok(Self { pool, schema: OnceCell::new(), tools: tools(), changes: Mutex::new(None) })
    }

    /// The pool, with the table created on first use.
    async fn db(&self) -> Result<&SqlitePool, ToolError> {
        self.schema
            .get_or_try_init(|| async {
                sqlx::query(
                    "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, notebook TEXT NOT NULL, \
                     title TEXT NOT NULL, body TEXT NOT NULL, updated TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
                )
                .execute(&self.pool)
                .await
                .map(drop)
            })
            .await
            .map_err(failed)?;
        Ok(&self.pool)
    }

    async fn note(&self, id: i64) -> Result<Note, ToolError> {
        let row = sqlx::query("SELECT id, notebook, title, body, updated FROM notes WHERE id = ?")
            .bind(id)
            .fetch_optional(self.db().await?)
            .await
            .map_err(failed)?;
        row.map(|row| note_from(&row)).ok_or_else(|| ToolError::Failed(format!("no note {id}")))
    }

    async fn insert(&self, notebook: &str, title: &str, body: &str) -> Result<Note, ToolError> {
        let row = sqlx::query(
            "INSERT INTO notes (notebook, title, body) VALUES (?, ?, ?) RETURNING id, notebook, title, body, updated",
        )
        .bind(notebook)
        .bind(title)
        .bind(body)
        .fetch_one(self.db().await?)
        .await
        .map_err(failed)?;
        Ok(note_from(&row))
    }

    /// Tells the pipeline the list of notes (resources) changed.
    async fn notes_changed(&self) {
        let changes = self.changes.lock().ok().and_then(|changes| changes.clone());
        if let Some(changes) = changes {
            changes.changed().await;
        }
    }
}

/// A note.
#[derive(Debug, Serialize, JsonSchema)]
struct Note {
    id: i64,
    notebook: String,
    title: String,
    body: String,
    /// When it was last written, UTC (`YYYY-MM-DD HH:MM:SS`).
    updated: String,
}

impl Note {
    fn uri(&self) -> String {
        format!("note://{}/{}", self.notebook, self.id)
    }

    fn markdown(&self) -> String {
        format!("# {}\n\n{}\n", self.title, self.body)
    }
}

fn note_from(row: &sqlx::sqlite::SqliteRow) -> Note {
    Note {
        id: row.get("id"),
        notebook: row.get("notebook"),
        title: row.get("title"),
        body: row.get("body"),
        updated: row.get("updated"),
    }
}

fn failed(error: sqlx::Error) -> ToolError {
    ToolError::Internal(format!("notes database: {error}"))
}

/// Asks the policy for `access` on `notebook`.
fn authorize(context: &CallContext, notebook: &str, access: Access) -> Result<(), ToolError> {
    Ok(context.authorize(&Request::scope(NOTEBOOK, notebook, access))?)
}

/// A notebook name: 1-64 of letters, digits, `-`, `_` (it is part of each note's URI).
fn check_notebook(notebook: &str) -> Result<(), ToolError> {
    let valid = (1..=64).contains(&notebook.len())
        && notebook.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(ToolError::InvalidArguments(format!("notebook '{notebook}': use 1-64 of letters, digits, '-' and '_'")))
    }
}

fn tools() -> ToolRouter<Notes> {
    let write = ToolAnnotations::write();
    ToolRouter::new()
        .tool(ToolSpec::named("notes_list", "List the notes of a notebook, newest first.").read_only(), notes_list)
        .tool(
            ToolSpec::named(
                "notes_search",
                "Search notes by words of their title or body, in the notebooks you may read.",
            )
            .read_only(),
            notes_search,
        )
        .tool(ToolSpec::named("note_get", "Read one note by id.").read_only(), note_get)
        .tool(ToolSpec::named("note_create", "Add a note to a notebook.").annotations(write.clone()), note_create)
        .tool(
            ToolSpec::named("notes_import", "Add many notes to a notebook at once; reports progress per note.")
                .annotations(write.clone()),
            notes_import,
        )
        .tool(
            ToolSpec::named("note_delete", "Delete a note by id.")
                .annotations(write.destructive(true).idempotent(true)),
            note_delete,
        )
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NotebookArguments {
    /// The notebook, e.g. `handbook`.
    notebook: String,
}

/// Notes of a notebook.
#[derive(Serialize, JsonSchema)]
struct NoteList {
    notes: Vec<Note>,
}

async fn notes_list(
    notes: &Notes,
    arguments: NotebookArguments,
    context: &CallContext,
) -> Result<Structured<NoteList>, ToolError> {
    check_notebook(&arguments.notebook)?;
    authorize(context, &arguments.notebook, Access::Read)?;
    let rows = sqlx::query("SELECT id, notebook, title, body, updated FROM notes WHERE notebook = ? ORDER BY id DESC")
        .bind(&arguments.notebook)
        .fetch_all(notes.db().await?)
        .await
        .map_err(failed)?;
    Ok(Structured(NoteList { notes: rows.iter().map(note_from).collect() }))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SearchArguments {
    /// Words to look for (all of them, case-insensitive).
    query: String,
}

async fn notes_search(
    notes: &Notes,
    arguments: SearchArguments,
    context: &CallContext,
) -> Result<Structured<NoteList>, ToolError> {
    let rows = sqlx::query("SELECT id, notebook, title, body, updated FROM notes ORDER BY id DESC")
        .fetch_all(notes.db().await?)
        .await
        .map_err(failed)?;
    let words: Vec<String> = arguments.query.split_whitespace().map(str::to_lowercase).collect();
    let found = rows
        .iter()
        .map(note_from)
        .filter(|note| context.authorize(&Request::scope(NOTEBOOK, note.notebook.as_str(), Access::Read)).is_ok())
        .filter(|note| {
            let text = format!("{} {}", note.title, note.body).to_lowercase();
            words.iter().all(|word| text.contains(word.as_str()))
        })
        .collect();
    Ok(Structured(NoteList { notes: found }))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct IdArguments {
    /// The note's id.
    id: i64,
}

async fn note_get(notes: &Notes, arguments: IdArguments, context: &CallContext) -> Result<Structured<Note>, ToolError> {
    let note = notes.note(arguments.id).await?;
    authorize(context, &note.notebook, Access::Read)?;
    Ok(Structured(note))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreateArguments {
    /// The notebook, e.g. `team-ops`.
    notebook: String,
    /// The title.
    title: String,
    /// The text, Markdown.
    body: String,
}

async fn note_create(
    notes: &Notes,
    arguments: CreateArguments,
    context: &CallContext,
) -> Result<Structured<Note>, ToolError> {
    check_notebook(&arguments.notebook)?;
    authorize(context, &arguments.notebook, Access::ReadWrite)?;
    let note = notes.insert(&arguments.notebook, &arguments.title, &arguments.body).await?;
    notes.notes_changed().await;
    Ok(Structured(note))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ImportArguments {
    /// The notebook the notes go to.
    notebook: String,
    /// The notes, in order.
    notes: Vec<ImportedNote>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ImportedNote {
    title: String,
    body: String,
}

/// What an import did.
#[derive(Serialize, JsonSchema)]
struct Imported {
    /// Notes added.
    imported: usize,
    /// Ids of the notes added, in order.
    ids: Vec<i64>,
}

async fn notes_import(
    notes: &Notes,
    arguments: ImportArguments,
    context: &CallContext,
) -> Result<Structured<Imported>, ToolError> {
    check_notebook(&arguments.notebook)?;
    authorize(context, &arguments.notebook, Access::ReadWrite)?;
    let total = arguments.notes.len();
    let mut ids = Vec::with_capacity(total);
    for (done, note) in arguments.notes.iter().enumerate() {
        if context.is_cancelled() {
            // What was imported stays; the caller asked to stop.
            break;
        }
        ids.push(notes.insert(&arguments.notebook, &note.title, &note.body).await?.id);
        let message = format!("imported '{}'", note.title);
        context.progress((done + 1) as f64, Some(total as f64), Some(message)).await;
    }
    notes.notes_changed().await;
    Ok(Structured(Imported { imported: ids.len(), ids }))
}

/// What a deletion did.
#[derive(Serialize, JsonSchema)]
struct Deleted {
    deleted: i64,
}

async fn note_delete(
    notes: &Notes,
    arguments: IdArguments,
    context: &CallContext,
) -> Result<Structured<Deleted>, ToolError> {
    let note = notes.note(arguments.id).await?;
    authorize(context, &note.notebook, Access::ReadWrite)?;
    sqlx::query("DELETE FROM notes WHERE id = ?").bind(note.id).execute(notes.db().await?).await.map_err(failed)?;
    notes.notes_changed().await;
    Ok(Structured(Deleted { deleted: note.id }))
}

#[async_trait]
impl Toolbox for Notes {
    fn name(&self) -> &str {
        "notes"
    }

    fn routes(&self) -> Option<Routes<'_>> {
        Some(self.tools.bind(self))
    }

    /// One resource per note (the policy's `resources` grants filter the list per caller).
    async fn resources(&self) -> Vec<ResourceSpec> {
        let Ok(pool) = self.db().await else { return Vec::new() };
        let rows = sqlx::query("SELECT id, notebook, title, body, updated FROM notes ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap_or_default();
        rows.iter()
            .map(note_from)
            .map(|note| ResourceSpec {
                uri: note.uri(),
                name: note.title.clone(),
                title: Some(note.title.clone()),
                description: Some(format!("Note {} of notebook {}", note.id, note.notebook)),
                mime_type: Some("text/markdown".into()),
            })
            .collect()
    }

    async fn resource_templates(&self) -> Vec<ResourceTemplateSpec> {
        vec![ResourceTemplateSpec {
            uri_template: "note://{notebook}/{id}".into(),
            name: "note".into(),
            description: Some("A note, as Markdown.".into()),
            mime_type: Some("text/markdown".into()),
        }]
    }

    async fn read_resource(
        &self,
        uri: &str,
        context: &CallContext,
    ) -> Result<Option<Vec<ResourceContents>>, ToolError> {
        let Some((notebook, id)) = uri.strip_prefix("note://").and_then(|rest| rest.split_once('/')) else {
            return Ok(None);
        };
        let Ok(id) = id.parse::<i64>() else { return Ok(None) };
        authorize(context, notebook, Access::Read)?;
        let note = notes_in(self, notebook, id).await?;
        Ok(note.map(|note| {
            vec![ResourceContents::Text {
                uri: note.uri(),
                mime_type: Some("text/markdown".into()),
                text: note.markdown(),
            }]
        }))
    }

    async fn prompts(&self) -> Vec<PromptSpec> {
        vec![PromptSpec {
            name: "summarize_notebook".into(),
            title: Some("Summarize a notebook".into()),
            description: Some("Ask the model for a summary of every note of a notebook.".into()),
            arguments: vec![PromptArgument {
                name: "notebook".into(),
                description: Some("The notebook to summarize.".into()),
                required: true,
            }],
        }]
    }

    async fn get_prompt(
        &self,
        name: &str,
        arguments: Map<String, Value>,
        context: &CallContext,
    ) -> Result<PromptOutput, ToolError> {
        if name != "summarize_notebook" {
            return Err(ToolError::NotFound(format!("prompt '{name}'")));
        }
        let notebook = arguments
            .get("notebook")
            .and_then(Value::as_str)
            .ok_or_else(|| ToolError::InvalidArguments("missing argument 'notebook'".into()))?;
        check_notebook(notebook)?;
        let listed = notes_list(self, NotebookArguments { notebook: notebook.to_owned() }, context).await?;
        let text: String = listed.0.notes.iter().map(Note::markdown).collect::<Vec<_>>().join("\n");
        Ok(PromptOutput {
            description: Some(format!("Summary of notebook {notebook}")),
            messages: vec![PromptMessage {
                role: PromptRole::User,
                content: rampart::Content::text(format!(
                    "Summarize the notes of notebook '{notebook}' in five bullet points.\n\n{text}"
                )),
            }],
        })
    }

    fn watch(&self, changes: CatalogChanges) {
        if let Ok(mut slot) = self.changes.lock() {
            *slot = Some(changes);
        }
    }
}

/// Note `id` if it is in `notebook`.
async fn notes_in(notes: &Notes, notebook: &str, id: i64) -> Result<Option<Note>, ToolError> {
    match notes.note(id).await {
        Ok(note) if note.notebook == notebook => Ok(Some(note)),
        Ok(_) | Err(ToolError::Failed(_)) => Ok(None),
        Err(other) => Err(other),
    }
}
