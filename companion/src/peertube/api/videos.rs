//! The video calls: one video's category (read, write), the paged list of local videos, and the category list.

use super::{classify, snippet_bytes, ApiClient, ApiError, LIST_INCLUDE, LIST_PAGE, LIST_PRIVACIES};
use crate::peertube::video_id::VideoUuid;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

impl ApiClient {
    /// A video's current category (`None` = no category).
    pub async fn video_category(&self, video: &VideoUuid) -> std::result::Result<Option<i64>, ApiError> {
        let path = format!("/api/v1/videos/{video}");
        let (status, body) = self.authed(Method::GET, &path, None).await?;
        match status {
            s if s.is_success() => {
                let v: Value = serde_json::from_slice(&body).map_err(|e| ApiError::Other(format!("GET {path}: {e}")))?;
                Ok(category_id(&v))
            }
            StatusCode::NOT_FOUND => Err(ApiError::NotFound(format!("video {video}"))),
            s => Err(classify(s, &format!("GET {path}"), &body)),
        }
    }

    /// Sets a video's category (`None` clears it).
    pub async fn set_category(&self, video: &VideoUuid, category: Option<i64>) -> std::result::Result<(), ApiError> {
        let path = format!("/api/v1/videos/{video}");
        let body = json!({ "category": category });
        let (status, bytes) = self.authed(Method::PUT, &path, Some(&body)).await?;
        match status {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_FOUND => Err(ApiError::NotFound(format!("video {video}"))),
            StatusCode::BAD_REQUEST => Err(ApiError::BadCategory(format!(
                "PUT {path} {{\"category\": {}}}: {}",
                category.map(|c| c.to_string()).unwrap_or_else(|| "null".into()),
                snippet_bytes(&bytes)
            ))),
            s => Err(classify(s, &format!("PUT {path}"), &bytes)),
        }
    }

    /// One page of every local video an admin may see — unlisted, private,
    /// internal, password-protected, unpublished, blocked ones included
    /// (`GET /api/v1/videos?isLocal=true&include=7&privacyOneOf=1..5&nsfw=both`,
    /// oldest first so uploads during the read only append): (total, uuid → category).
    pub async fn local_videos_page(&self, start: usize) -> std::result::Result<(u64, Vec<(VideoUuid, Option<i64>)>), ApiError> {
        let path = list_path(start);
        let (status, body) = self.authed(Method::GET, &path, None).await?;
        if !status.is_success() {
            return Err(classify(status, &format!("GET {path}"), &body));
        }
        let v: Value = serde_json::from_slice(&body).map_err(|e| ApiError::Other(format!("GET {path}: answer is not JSON ({e})")))?;
        let total = v.get("total").and_then(Value::as_u64).unwrap_or(0);
        let data = v.get("data").and_then(Value::as_array).ok_or_else(|| ApiError::Other(format!("GET {path}: no data array in the answer")))?;
        Ok((total, data.iter().filter_map(|d| Some((VideoUuid::parse(d.get("uuid")?.as_str()?)?, category_id(d)))).collect()))
    }

    /// Every local video's category, read page by page (pages after the first
    /// in parallel through the gate). `None` when reading them would cost more
    /// requests than `worth` per-video reads: the caller reads those instead.
    pub async fn local_videos(self: &std::sync::Arc<Self>, worth: usize) -> std::result::Result<Option<HashMap<VideoUuid, Option<i64>>>, ApiError> {
        let (total, first) = self.local_videos_page(0).await?;
        let pages = (total as usize).div_ceil(LIST_PAGE);
        if pages > worth.max(1) {
            return Ok(None);
        }
        let mut out: HashMap<VideoUuid, Option<i64>> = first.into_iter().collect();
        let mut set = tokio::task::JoinSet::new();
        for page in 1..pages {
            let c = self.clone();
            set.spawn(async move { c.local_videos_page(page * LIST_PAGE).await });
        }
        while let Some(r) = set.join_next().await {
            let (_, rows) = r.map_err(|e| ApiError::Other(format!("video list task: {e}")))??;
            out.extend(rows);
        }
        Ok(Some(out))
    }

    /// `GET /api/v1/videos/categories` as id → label.
    pub async fn categories(&self) -> std::result::Result<BTreeMap<String, String>, ApiError> {
        let v = self.get_public("/api/v1/videos/categories").await?;
        let obj = v.as_object().ok_or_else(|| ApiError::Other("categories: answer is not a JSON object".into()))?;
        Ok(obj.iter().map(|(k, v)| (k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))).collect())
    }
}

/// The list query of [`ApiClient::local_videos_page`].
pub fn list_path(start: usize) -> String {
    let privacies: String = LIST_PRIVACIES.iter().map(|p| format!("&privacyOneOf={p}")).collect();
    format!("/api/v1/videos?isLocal=true&include={LIST_INCLUDE}{privacies}&nsfw=both&sort=createdAt&skipCount=false&start={start}&count={LIST_PAGE}")
}

/// A video's category id as PeerTube shows it (`{"id": 105, "label": …}`, or a bare number).
fn category_id(v: &Value) -> Option<i64> {
    match v.get("category") {
        Some(Value::Object(c)) => c.get("id").and_then(Value::as_i64),
        Some(Value::Number(n)) => n.as_i64(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_query_asks_for_every_local_video() {
        let p = list_path(200);
        for part in [
            "isLocal=true",
            "include=7",
            "privacyOneOf=1&",
            "privacyOneOf=2&",
            "privacyOneOf=3&",
            "privacyOneOf=4&",
            "privacyOneOf=5&",
            "nsfw=both",
            "start=200",
            "count=100",
        ] {
            assert!(p.contains(part), "{part} missing from {p}");
        }
        assert_eq!(category_id(&json!({"category": {"id": 105, "label": "x"}})), Some(105));
        assert_eq!(category_id(&json!({"category": {"id": null, "label": "Unknown"}})), None);
        assert_eq!(category_id(&json!({"category": 7})), Some(7));
    }
}
