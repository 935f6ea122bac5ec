//! `notes-toolbox`: Rampart with one more toolbox, a team's notes. Every `rampart`
//! command works (`notes-toolbox serve`, `notes-toolbox token create`, `notes-toolbox
//! tool note_get --id 1`, `notes-toolbox shell`), and the notes tools get the same
//! authentication, roles, limits and audit as the built-in ones.

use std::process::ExitCode;

fn main() -> ExitCode {
    // `[toolbox.notes]` of rampart.toml is handed to `Notes::from_settings`.
    rampart::Rampart::new().toolbox_from_settings("notes", notes_toolbox::Notes::from_settings).run()
}
