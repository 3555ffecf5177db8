//! `/admin/subscribers/import` and the CSV downloads: the console's door
//! to `NewsletterService::import_subscribers` and the exports, the same
//! functions `masthead import` and `masthead export` call. An upload is a
//! `multipart/form-data` POST whose form token is checked like every other
//! form's; the file goes to a temporary file, never whole into memory.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::web::{self, Bytes, Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt;
use minijinja::context;
use serde::Serialize;

use crate::http::extract::parse_id;
use crate::http::pages::form::Form;
use crate::http::pages::{security, see_other, Page, Site, Visitor};
use crate::newsletter::csv_file::{FileError, MAX_FILE_BYTES};
use crate::newsletter::import::{
    ImportError, ImportReport, ImportWatch, SubscriberImport, UpdateField,
};
use crate::newsletter::model::{ImportId, ImportRecord};
use crate::platform::error::AppError;
use crate::state::AppState;

pub const IMPORT: &str = "/admin/subscribers/import";
/// Form fields other than the file are short.
const MAX_FIELD_BYTES: usize = 1_024;
/// Confirmation links an upload queues per hour, as the command line's
/// default.
const CONFIRMATIONS_PER_HOUR: u32 = 600;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(IMPORT, web::get().to(form))
        .route(IMPORT, web::post().to(upload))
        .route("/admin/subscribers/imports/{id}", web::get().to(progress))
        .route("/admin/subscribers/export/{list}", web::get().to(download));
}

async fn form(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?;
    state.newsletter.authorize_transfer(admin)?;
    import_page(Form::new().with("dry_run", "on"), None).render(&site, &visitor)
}

fn import_page(form: Form, report: Option<ReportView>) -> Page {
    let status = form.status();
    Page::new(
        "admin_subscriber_import.html",
        context! {
            title => "Import subscribers",
            noindex => true,
            console_area => "subscribers",
            form => form,
            report => report,
            max_megabytes => MAX_FILE_BYTES / (1024 * 1024),
        },
    )
    .status(status)
}

/// An uploaded file on disk, deleted when dropped.
struct Upload {
    path: PathBuf,
}

impl Drop for Upload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What a posted upload carried.
struct Received {
    upload: Option<Upload>,
    fields: Vec<(String, String)>,
}

impl Received {
    fn checked(&self, name: &str) -> bool {
        self.fields.iter().any(|(k, _)| k == name)
    }

    fn value(&self, name: &str) -> &str {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// Reads a `multipart/form-data` body: the file into a temporary file,
/// up to the import's limit, the other fields into memory.
async fn receive(req: &HttpRequest, payload: web::Payload) -> Result<Received, ReceiveError> {
    let mut multipart = Multipart::new(req.headers(), payload);
    let mut received = Received {
        upload: None,
        fields: Vec::new(),
    };
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(|_| ReceiveError::Malformed)?;
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            let upload = Upload {
                path: std::env::temp_dir().join(format!("masthead-import-{}.csv", ImportId::new())),
            };
            let mut file = std::fs::File::create(&upload.path).map_err(ReceiveError::Io)?;
            let mut size = 0u64;
            while let Some(chunk) = field.next().await {
                let chunk = chunk.map_err(|_| ReceiveError::Malformed)?;
                size += chunk.len() as u64;
                if size > MAX_FILE_BYTES {
                    return Err(ReceiveError::TooLarge);
                }
                file = web::block(move || file.write_all(&chunk).map(|()| file))
                    .await
                    .map_err(|e| ReceiveError::Io(std::io::Error::other(e)))?
                    .map_err(ReceiveError::Io)?;
            }
            received.upload = (size > 0).then_some(upload);
        } else {
            let mut value = Vec::new();
            while let Some(chunk) = field.next().await {
                value.extend_from_slice(&chunk.map_err(|_| ReceiveError::Malformed)?);
                if value.len() > MAX_FIELD_BYTES {
                    return Err(ReceiveError::Malformed);
                }
            }
            received
                .fields
                .push((name, String::from_utf8_lossy(&value).into_owned()));
        }
    }
    Ok(received)
}

enum ReceiveError {
    TooLarge,
    Malformed,
    Io(std::io::Error),
}

/// A dry run shows its report on the page; an import starts in the
/// background and its progress page follows.
#[tracing::instrument(skip_all)]
async fn upload(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?;
    state.newsletter.authorize_transfer(admin)?;
    let received = match receive(&req, payload).await {
        Ok(received) => received,
        Err(error) => return refuse_receipt(&site, &visitor, error),
    };
    if !site
        .tokens
        .verify(&req, received.value(security::FIELD), state.clock.now())
    {
        return Err(AppError::Forbidden {
            detail: "this form has expired or was not sent from this site; \
                     go back, reload the page and try again",
        });
    }
    let options = import_options(&received);
    let Some(upload) = received.upload else {
        return refuse(&site, &visitor, "choose a CSV file to import");
    };
    if options.dry_run {
        return dry_run(&state, &site, &visitor, upload, options).await;
    }
    start(&state, &site, &visitor, upload, options).await
}

/// Why an upload could not be read, as the page or the error to answer.
fn refuse_receipt(
    site: &Site,
    visitor: &Visitor,
    error: ReceiveError,
) -> Result<HttpResponse, AppError> {
    match error {
        ReceiveError::TooLarge => refuse(
            site,
            visitor,
            &FileError::TooLarge {
                size: MAX_FILE_BYTES + 1,
            }
            .to_string(),
        ),
        ReceiveError::Malformed => Err(AppError::MalformedBody {
            detail: "the upload is not a readable multipart form".to_owned(),
        }),
        ReceiveError::Io(e) => Err(AppError::Internal(e.into())),
    }
}

/// The import's options, as the form's boxes are ticked.
fn import_options(received: &Received) -> SubscriberImport {
    let mut update = Vec::new();
    if received.checked("update_sections") {
        update.push(UpdateField::Sections);
    }
    if received.checked("update_name") {
        update.push(UpdateField::Name);
    }
    SubscriberImport {
        dry_run: received.checked("dry_run"),
        send_confirmations: received.checked("send_confirmations"),
        confirmations_per_hour: CONFIRMATIONS_PER_HOUR,
        update,
    }
}

/// Runs the import without keeping anything and shows its report; the
/// uploaded file goes once it is read.
async fn dry_run(
    state: &AppState,
    site: &Site,
    visitor: &Visitor,
    upload: Upload,
    options: SubscriberImport,
) -> Result<HttpResponse, AppError> {
    let report = state
        .newsletter
        .import_subscribers(upload.path.clone(), options.clone(), ImportWatch::silent())
        .await;
    drop(upload);
    match report {
        Ok(report) => import_page(options_form(&options), Some(ReportView::from(report)))
            .render(site, visitor),
        Err(ImportError::File(e)) => refuse(site, visitor, &e.to_string()),
        Err(ImportError::Newsletter(e)) => Err(e.into()),
    }
}

/// Starts the import in the background, and shows its progress once its
/// file is checked and it has an id (or why the file is refused).
async fn start(
    state: &AppState,
    site: &Site,
    visitor: &Visitor,
    upload: Upload,
    options: SubscriberImport,
) -> Result<HttpResponse, AppError> {
    let (started, id) = tokio::sync::oneshot::channel::<ImportId>();
    let started = Mutex::new(Some(started));
    let watch = ImportWatch {
        progress: Box::new(move |p| {
            let sender = started
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            if let (Some(sender), Some(id)) = (sender, p.import_id) {
                let _ = sender.send(id);
            }
        }),
        stop: None,
    };
    let newsletter = state.newsletter.clone();
    let task = tokio::spawn(async move {
        let path = upload.path.clone();
        let result = newsletter.import_subscribers(path, options, watch).await;
        drop(upload);
        if let Err(error) = &result {
            tracing::error!(error = %error, "import from the console failed");
        }
        result
    });
    match id.await {
        Ok(id) => Ok(see_other(&format!("/admin/subscribers/imports/{id}"))),
        // It ended before it began: the file was refused.
        Err(_) => match task.await {
            Ok(Err(ImportError::File(e))) => refuse(site, visitor, &e.to_string()),
            Ok(Err(ImportError::Newsletter(e))) => Err(e.into()),
            Ok(Ok(_)) => Err(AppError::Internal(anyhow::anyhow!("the import gave no id"))),
            Err(e) => Err(AppError::Internal(e.into())),
        },
    }
}

fn options_form(options: &SubscriberImport) -> Form {
    let mut form = Form::new();
    for (name, on) in [
        ("dry_run", options.dry_run),
        ("send_confirmations", options.send_confirmations),
        (
            "update_sections",
            options.update.contains(&UpdateField::Sections),
        ),
        ("update_name", options.update.contains(&UpdateField::Name)),
    ] {
        if on {
            form = form.with(name, "on");
        }
    }
    form
}

fn refuse(site: &Site, visitor: &Visitor, reason: &str) -> Result<HttpResponse, AppError> {
    let form = Form::new()
        .with("dry_run", "on")
        .with_error("file", "invalid_file", reason);
    import_page(form, None).render(site, visitor)
}

#[derive(Serialize)]
struct ReportView {
    rows: u64,
    new: u64,
    updated: u64,
    unchanged: u64,
    invalid: u64,
    suppressed: u64,
    unlisted_invalid: u64,
    problems: Vec<(u64, String)>,
    unknown_columns: Vec<String>,
}

impl From<ImportReport> for ReportView {
    fn from(report: ImportReport) -> Self {
        let c = report.counts;
        let listed = u64::try_from(report.problems.len()).unwrap_or(u64::MAX);
        Self {
            rows: report.rows,
            new: c.new,
            updated: c.updated,
            unchanged: c.unchanged,
            invalid: c.invalid,
            suppressed: c.suppressed,
            unlisted_invalid: c.invalid.saturating_sub(listed),
            problems: report
                .problems
                .into_iter()
                .map(|p| (p.row, p.reason))
                .collect(),
            unknown_columns: report.unknown_columns,
        }
    }
}

#[derive(Serialize)]
struct ProgressView {
    id: String,
    done: i64,
    total: i64,
    percent: i64,
    new: i64,
    updated: i64,
    unchanged: i64,
    invalid: i64,
    suppressed: i64,
    finished: bool,
}

impl From<ImportRecord> for ProgressView {
    fn from(r: ImportRecord) -> Self {
        let done = r.last_row - 1;
        Self {
            id: r.id.to_string(),
            done,
            total: r.total_rows,
            percent: if r.total_rows > 0 {
                done * 100 / r.total_rows
            } else {
                100
            },
            new: r.new_count,
            updated: r.updated_count,
            unchanged: r.unchanged_count,
            invalid: r.invalid_count,
            suppressed: r.suppressed_count,
            finished: r.finished_at.is_some(),
        }
    }
}

async fn progress(
    state: Data<AppState>,
    site: Data<Site>,
    visitor: Visitor,
    id: Path<String>,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?;
    let id: ImportId = parse_id(&id).map_err(|_| AppError::NotFound)?;
    let record = state
        .newsletter
        .import_status(admin, id)
        .await?
        .ok_or(AppError::NotFound)?;
    Page::new(
        "admin_subscriber_import_progress.html",
        context! {
            title => "Import of subscribers",
            noindex => true,
            console_area => "subscribers",
            import => ProgressView::from(record),
        },
    )
    .render(&site, &visitor)
}

/// A `Write` whose bytes go to a streamed response, a chunk at a time;
/// the export writing it runs on a blocking thread.
struct ChannelWriter {
    sender: tokio::sync::mpsc::Sender<Bytes>,
    buffer: Vec<u8>,
}

const CHUNK_BYTES: usize = 64 * 1024;

impl Write for ChannelWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK_BYTES {
            self.flush()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buffer));
        // The download was abandoned: stop reading the database.
        self.sender
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
}

/// `subscribers.csv`, `suppressions.csv` or `readers.csv`, streamed as the
/// database is read.
async fn download(
    state: Data<AppState>,
    visitor: Visitor,
    list: Path<String>,
) -> Result<HttpResponse, AppError> {
    let admin = visitor.require_account()?;
    state.newsletter.authorize_transfer(admin)?;
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Bytes>(4);
    let out = ChannelWriter {
        sender,
        buffer: Vec::new(),
    };
    let state = state.into_inner();
    let name = list.into_inner();
    let export = match name.as_str() {
        "subscribers.csv" => {
            tokio::spawn(async move { state.newsletter.export_subscribers(out).await })
        }
        "suppressions.csv" => {
            tokio::spawn(async move { state.newsletter.export_suppressions(out).await })
        }
        "readers.csv" => tokio::spawn(async move { state.accounts.export_readers(out).await }),
        _ => return Err(AppError::NotFound),
    };
    tokio::spawn(async move {
        match export.await {
            Ok(Ok(rows)) => tracing::info!(rows, "export downloaded"),
            Ok(Err(error)) => tracing::warn!(error = %error, "export ended early"),
            Err(error) => tracing::error!(error = %error, "export task failed"),
        }
    });
    let body = futures_util::stream::poll_fn(move |cx| {
        receiver
            .poll_recv(cx)
            .map(|chunk| chunk.map(Ok::<_, std::io::Error>))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .streaming(body))
}
