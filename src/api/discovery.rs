//! Content discovery: tags (end-8), the catalog, and referrers (end-12).

use super::{ApiError, Call, HandlerResult, Reply};
use crate::oci::{Digest, MediaType, RepositoryName, Tag};
use crate::registry::{Page, Registry};
use crate::storage::{BlobStore, MetaStore};
use http::StatusCode;
use serde_json::json;

/// "If included, the `Link` header MUST be set according to RFC 5988 with the Relation
/// Type `rel="next"`."
fn with_next_link<S>(reply: Reply<S>, path: &str, n: Option<usize>, page: &Page) -> Reply<S> {
    match page.next_last() {
        Some(last) => {
            let n = n.map(|n| format!("n={n}&")).unwrap_or_default();
            reply.header("link", format!("<{path}?{n}last={last}>; rel=\"next\""))
        }
        _ => reply,
    }
}

pub async fn tags<B: BlobStore, M: MetaStore>(
    registry: &Registry<B, M>,
    name: &RepositoryName,
    call: &Call<B::Native>,
) -> HandlerResult<B::Body> {
    let n = call.query.page_size()?;
    let last = call.query.get("last");
    if let Some(last) = last {
        Tag::parse(last)
            .map_err(|e| ApiError::bad_request(crate::oci::ErrorCode::Unsupported, format!("last: {e}")))?;
    }
    let page = registry.list_tags(name, n, last).await?;
    let reply = Reply::new(StatusCode::OK).json(&json!({ "name": name.as_str(), "tags": page.items }));
    Ok(with_next_link(reply, &format!("/v2/{name}/tags/list"), n, &page))
}

pub async fn catalog<B: BlobStore, M: MetaStore>(
    registry: &Registry<B, M>,
    call: &Call<B::Native>,
) -> HandlerResult<B::Body> {
    let n = call.query.page_size()?;
    let last = call.query.get("last");
    if let Some(last) = last {
        RepositoryName::parse(last).map_err(|e| ApiError::name_invalid(format!("last: {e}")))?;
    }
    let page = match &call.identity {
        None => registry.catalog(n, last).await?,
        Some(_) => visible_catalog(registry, call, n, last).await?,
    };
    let reply = Reply::new(StatusCode::OK).json(&json!({ "repositories": page.items }));
    Ok(with_next_link(reply, "/v2/_catalog", n, &page))
}

/// Most catalog names one filtered catalog request examines: five listings of 1,000, well
/// below the 1,000 calls to Cloudflare services one request may make.
pub const CATALOG_SCAN_LIMIT: usize = 5 * crate::storage::limits::R2_MAX_LIST;

/// "The catalog lists only the repositories the caller may pull": pages through the
/// catalog, keeping the visible names, until `n` are found, the catalog ends, or
/// [`CATALOG_SCAN_LIMIT`] names were examined. A page cut by that bound may come back
/// short (even empty) with a `Link` whose `last` is the last name examined, as the spec
/// allows: "The response to such a request MAY return fewer than `<int>` results, but only
/// when ... a `Link` header is provided." That `last` may be a repository the caller cannot
/// pull (one name per 5,000 examined), which an opaque cursor would avoid.
async fn visible_catalog<B: BlobStore, M: MetaStore>(
    registry: &Registry<B, M>,
    call: &Call<B::Native>,
    n: Option<usize>,
    last: Option<&str>,
) -> Result<Page, ApiError> {
    let wanted = n.unwrap_or(usize::MAX);
    let mut visible = Page::default();
    if wanted == 0 {
        return Ok(visible);
    }
    let mut cursor = last.map(str::to_owned);
    let mut examined = 0;
    loop {
        let room = (CATALOG_SCAN_LIMIT - examined).min(crate::storage::limits::R2_MAX_LIST);
        let page = registry.catalog(Some(room), cursor.as_deref()).await?;
        for name in &page.items {
            let allowed = RepositoryName::parse(name).is_ok_and(|repo| call.is_allowed_to_pull(&repo));
            if allowed {
                if visible.items.len() == wanted {
                    visible.more = true;
                    return Ok(visible);
                }
                visible.items.push(name.clone());
            }
            cursor = Some(name.clone());
        }
        examined += page.items.len();
        match page.more {
            true if examined >= CATALOG_SCAN_LIMIT => {
                visible.more = true;
                visible.resume_after = cursor;
                return Ok(visible);
            }
            true if !page.items.is_empty() => {}
            _ => return Ok(visible),
        }
    }
}

/// "Upon success, the response MUST be a JSON body with an image index containing a list
/// of descriptors. The `Content-Type` header MUST be set to
/// `application/vnd.oci.image.index.v1+json`."
pub async fn referrers<B: BlobStore, M: MetaStore>(
    registry: &Registry<B, M>,
    name: &RepositoryName,
    subject: &Digest,
    call: &Call<B::Native>,
) -> HandlerResult<B::Body> {
    let artifact_type = call.query.get("artifactType").filter(|t| !t.is_empty());
    let descriptors = registry.referrers(name, subject, artifact_type).await?;
    let index = json!({
        "schemaVersion": 2,
        "mediaType": MediaType::ImageIndex,
        "manifests": descriptors,
    });
    let bytes = serde_json::to_vec(&index).expect("an index always serialises");
    let mut reply = Reply::new(StatusCode::OK).bytes(MediaType::ImageIndex.as_str(), bytes);
    if artifact_type.is_some() {
        reply = reply.header("oci-filters-applied", "artifactType");
    }
    Ok(reply)
}
