//! Verifying the log from the page: the chains, the stored columns, the signed checkpoints.

use super::*;

/// `POST /console/audit/verify`: verifies the log, then shows the search with the result.
pub(crate) async fn verify(State(console): State<Arc<Console>>, Extension(signed): Extension<Signed>) -> Response {
    let result = verification(&console, &signed).await;
    render(&console, &signed, &Filters::default(), Some(result)).await
}

/// Runs a verification (one at a time) on a blocking thread: hashing every record of a
/// large log, or reading a JSON-lines file, must not hold up the runtime's workers.
async fn verification(console: &Console, signed: &Signed) -> Markup {
    let Ok(_one_at_a_time) = console.audit.verifying.try_lock() else {
        return verify_section(html! {
            (layout::notice(false, "A verification is running already; try again when it has finished."))
        });
    };
    let source = console.audit.source(&console.store);
    let files = console.audit.checkpoints.clone();
    let runtime = tokio::runtime::Handle::current();
    let started = Instant::now();
    let result = tokio::task::spawn_blocking(move || runtime.block_on(verify_audit_log(&source, files))).await;
    let elapsed_ms = started.elapsed().as_millis();
    let shown = match result {
        Ok(result) => {
            let intact = matches!(&result, Ok(AuditVerification { outcome: Ok(_), .. }));
            tracing::info!(principal = %signed.principal().id, intact, elapsed_ms, "console: audit log verified");
            verified(&result)
        }
        Err(error) => {
            tracing::error!(%error, "console: the audit verification stopped");
            layout::notice(false, "The verification stopped unexpectedly; the server log says why.")
        }
    };
    verify_section(html! {
        (shown)
        p.hint { "Took " (elapsed_ms) " ms." }
    })
}

fn verify_section(content: Markup) -> Markup {
    html! { section #verify-result .card { h2 { "Verification" } (content) } }
}

/// The checkpoints' status in a sentence.
fn checkpoint_status(check: &CheckpointCheck) -> String {
    match check.checked_with() {
        None => format!(
            "No checkpoint file at {}: no signed checkpoint was checked, so records deleted at the end of the log, \
             or a log re-chained from the start, are not detectable.",
            check.file.display()
        ),
        Some(checked) => format!("{checked}."),
    }
}

fn verified(result: &Result<AuditVerification, AuditVerifyError>) -> Markup {
    let verification = match result {
        Ok(verification) => verification,
        Err(AuditVerifyError::NoPublicKey { file, public_key }) => {
            return html! {
                (layout::notice(false, &format!(
                    "Not verified: the checkpoint file {} exists, but there is no public key at {} to check it \
                     with. The command rampart audit public-key prints it, from the signing key; save it there.",
                    file.display(), public_key.display()
                )))
                p #checkpoint-status data-checked="0" { "No public key: no checkpoint was checked." }
            };
        }
        Err(error) => return layout::notice(false, &format!("The audit log could not be verified: {error}")),
    };
    let check = &verification.checkpoints;
    let status = html! { p #checkpoint-status data-checked=(check.checked) { (checkpoint_status(check)) } };
    match &verification.outcome {
        Err(VerifyProblem::Tampered(problem)) => html! {
            p.notice.error #verify-status role="alert" data-intact="false" { "Audit log TAMPERED: " (problem) }
            (status)
        },
        Err(VerifyProblem::CheckpointsRefused(problem)) => html! {
            p.notice.error #verify-status role="alert" data-intact="false" { "Audit checkpoints REFUSED: " (problem) }
            (status)
        },
        Ok(chains) => {
            let records: u64 = chains.iter().map(|chain| chain.summary.records).sum();
            html! {
                p.notice.ok #verify-status role="status" data-intact="true" {
                    "Audit log intact: " (records) " record" @if records != 1 { "s" }
                    @if chains.len() > 1 { " in " (chains.len()) " hash chains" } "."
                }
                (status)
                table #verify-chains {
                    thead { tr {
                        th scope="col" { "Chain" } th scope="col" { "Records" } th scope="col" { "Last seq" }
                        th scope="col" { "Last hash" } th scope="col" { "Checkpoints" }
                    } }
                    tbody {
                        @for chain in chains {
                            tr {
                                td { @if chain.chain.is_empty() { "(default)" } @else { (chain.chain) } }
                                td.num { (chain.summary.records) }
                                td.num { (chain.summary.last.seq) }
                                td { code { (chain.summary.last.hash) } }
                                td { (check.describe(&chain.summary)) }
                            }
                        }
                    }
                }
            }
        }
    }
}
