//! Content discovery: tags (end-8), the catalog, and referrers (end-12).

use super::{ApiError, Call, HandlerResult, Reply};
use crate::oci::{media_type, Digest, RepositoryName, Tag};
use crate::registry::{Page, Registry};
use crate::storage::{BlobStore, MetaStore};
use http::StatusCode;
use serde_json::json;

/// "If included, the `Link` header MUST be set according to RFC 5988 with the Relation
/// Type `rel="next"`."
fn with_next_link<S>(reply: Reply<S>, path: &str, n: Option<usize>, page: &Page) -> Reply<S> {
    match (page.more, page.items.last()) {
        (true, Some(last)) => {
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

/// "The catalog lists only the repositories the caller may pull": pages through the
/// catalog, keeping the visible names, until `n` are found or the catalog ends.
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
    loop {
        let page = registry.catalog(Some(1000), cursor.as_deref()).await?;
        for name in &page.items {
            let allowed = RepositoryName::parse(name).is_ok_and(|repo| call.may_pull(&repo));
            if allowed {
                if visible.items.len() == wanted {
                    visible.more = true;
                    return Ok(visible);
                }
                visible.items.push(name.clone());
            }
        }
        match (page.more, page.items.last()) {
            (true, Some(last)) => cursor = Some(last.clone()),
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
        "mediaType": media_type::OCI_INDEX,
        "manifests": descriptors,
    });
    let bytes = serde_json::to_vec(&index).expect("an index always serialises");
    let mut reply = Reply::new(StatusCode::OK).bytes(media_type::OCI_INDEX, bytes);
    if artifact_type.is_some() {
        reply = reply.header("oci-filters-applied", "artifactType");
    }
    Ok(reply)
}
