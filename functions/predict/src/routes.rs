//! Maps a method and path to an endpoint of the Open Inference Protocol or of
//! the named-feature form.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    ServerMetadata,
    Live,
    Ready,
    ModelMetadata { model: String, version: Option<String> },
    ModelReady { model: String, version: Option<String> },
    Infer { model: String, version: Option<String> },
    Predict { model: String, version: Option<String> },
}

impl Route {
    /// Parses a request path. A leading API Gateway stage or function-URL
    /// prefix before `/v1` or `/v2` is skipped. Returns 404 for unknown paths
    /// and 405 for a known path with the wrong method.
    pub fn parse(method: &str, path: &str) -> Result<Self, ApiError> {
        let decoded: Vec<Cow<str>> = path.split('/').filter(|s| !s.is_empty()).map(|s| percent_decode_str(s).decode_utf8_lossy()).collect();
        let start = decoded.iter().take(4).position(|s| s == "v1" || s == "v2").unwrap_or(0);
        let segments: Vec<&str> = decoded[start..].iter().map(|s| s.as_ref()).collect();
        let no_route = || {
            ApiError::not_found(format!(
                "no endpoint at `{method} {path}`; see /v2 (Open Inference Protocol) or POST /v1/models/<model>:predict"
            ))
        };
        let (route, wanted) = match segments.as_slice() {
            ["v2"] => (Route::ServerMetadata, "GET"),
            ["v2", "health", "live"] => (Route::Live, "GET"),
            ["v2", "health", "ready"] => (Route::Ready, "GET"),
            ["v2", "models", model, rest @ ..] => {
                let (version, rest) = match rest {
                    ["versions", version, rest @ ..] => (Some(version.to_string()), rest),
                    _ => (None, rest),
                };
                let model = model.to_string();
                match rest {
                    [] => (Route::ModelMetadata { model, version }, "GET"),
                    ["ready"] => (Route::ModelReady { model, version }, "GET"),
                    ["infer"] => (Route::Infer { model, version }, "POST"),
                    _ => return Err(no_route()),
                }
            }
            ["v1", "models", rest @ ..] => {
                // `/v1/models/m:predict` or `/v1/models/m/versions/3:predict`.
                let (model, version) = match rest {
                    [target] => (target.strip_suffix(":predict").ok_or_else(no_route)?, None),
                    [model, "versions", target] => (*model, Some(target.strip_suffix(":predict").ok_or_else(no_route)?)),
                    _ => return Err(no_route()),
                };
                (Route::Predict { model: model.to_string(), version: version.map(str::to_string) }, "POST")
            }
            _ => return Err(no_route()),
        };
        if !method.eq_ignore_ascii_case(wanted) {
            return Err(ApiError::new(405, format!("method {method} is not allowed on `{path}`; use {wanted}")));
        }
        Ok(route)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(m: &str, v: Option<&str>) -> (String, Option<String>) {
        (m.to_string(), v.map(str::to_string))
    }

    #[test]
    fn protocol_paths_parse() {
        assert_eq!(Route::parse("GET", "/v2").unwrap(), Route::ServerMetadata);
        assert_eq!(Route::parse("GET", "/v2/health/live").unwrap(), Route::Live);
        assert_eq!(Route::parse("GET", "/v2/health/ready").unwrap(), Route::Ready);
        let (m, v) = model("esol", Some("2"));
        assert_eq!(Route::parse("POST", "/v2/models/esol/versions/2/infer").unwrap(), Route::Infer { model: m, version: v });
        let (m, v) = model("esol", None);
        assert_eq!(Route::parse("GET", "/v2/models/esol/ready").unwrap(), Route::ModelReady { model: m, version: v });
    }

    #[test]
    fn stage_and_function_url_prefixes_are_skipped() {
        assert_eq!(Route::parse("GET", "/prod/v2/health/live").unwrap(), Route::Live);
        assert_eq!(Route::parse("GET", "/lambda-url/predict/v2").unwrap(), Route::ServerMetadata);
    }

    #[test]
    fn v1_predict_paths_parse_with_encoded_colon() {
        let (m, v) = model("esol", None);
        assert_eq!(Route::parse("POST", "/v1/models/esol%3Apredict").unwrap(), Route::Predict { model: m, version: v });
        let (m, v) = model("esol", Some("production"));
        assert_eq!(
            Route::parse("POST", "/v1/models/esol/versions/production:predict").unwrap(),
            Route::Predict { model: m, version: v }
        );
    }

    #[test]
    fn unknown_paths_and_methods_are_errors() {
        assert_eq!(Route::parse("GET", "/v3/models").unwrap_err().status, 404);
        assert_eq!(Route::parse("GET", "/v2/models/esol/infer").unwrap_err().status, 405);
        assert_eq!(Route::parse("POST", "/v1/models/esol").unwrap_err().status, 404);
    }
}
