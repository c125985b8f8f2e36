//! The one place where failures become AWS errors: status, `x-amzn-ErrorType`, and the
//! JSON body `{"Type": "User"|"Service", "message": …}` (lambda-interfaces.md §1.4).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// An AWS-shaped error response.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Modeled extra members (e.g. `Reason`).
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            extra: None,
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "ResourceNotFoundException", message)
    }

    pub fn function_not_found(arn: &str) -> Self {
        Self::not_found(format!("Function not found: {arn}"))
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            message,
        )
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ValidationException", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "ResourceConflictException", message)
    }

    pub fn bad_content(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            message,
        )
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            message,
        )
    }

    pub fn precondition(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailedException",
            message,
        )
    }

    /// 429 with Lambda's `Reason` (`ConcurrentInvocationLimitExceeded`, …).
    pub fn throttled(reason: &str) -> Self {
        let mut extra = serde_json::Map::new();
        extra.insert("Reason".into(), reason.into());
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "TooManyRequestsException",
            message: "Rate Exceeded.".into(),
            extra: Some(extra),
        }
    }

    pub fn service(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServiceException",
            message,
        )
    }

    /// Exceptions whose model spells the member `Message` rather than `message`.
    fn message_key(&self) -> &'static str {
        match self.code {
            "ResourceNotFoundException" | "ServiceException" | "ResourceInUseException" => {
                "Message"
            }
            _ => "message",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, message = %self.message, "request failed");
        }
        let mut body = self.extra.clone().unwrap_or_default();
        body.insert(
            "Type".into(),
            if self.status.is_server_error() {
                "Service"
            } else {
                "User"
            }
            .into(),
        );
        body.insert(self.message_key().into(), self.message.clone().into());
        let mut resp = (self.status, axum::Json(serde_json::Value::Object(body))).into_response();
        resp.headers_mut()
            .insert("x-amzn-ErrorType", HeaderValue::from_static(self.code));
        resp
    }
}

impl From<nimbus_store::StoreError> for ApiError {
    fn from(e: nimbus_store::StoreError) -> Self {
        ApiError::service(format!("storage error: {e}"))
    }
}

impl From<nimbus_model::NameError> for ApiError {
    fn from(e: nimbus_model::NameError) -> Self {
        match e {
            nimbus_model::NameError::QualifierMismatch => ApiError::invalid(e.to_string()),
            nimbus_model::NameError::ForeignArn(m) => ApiError::invalid(m),
            _ => ApiError::validation(e.to_string()),
        }
    }
}

impl From<nimbus_model::function::ConfigError> for ApiError {
    fn from(e: nimbus_model::function::ConfigError) -> Self {
        if e.validation {
            ApiError::validation(e.message)
        } else {
            ApiError::invalid(e.message)
        }
    }
}

impl From<nimbus_artifact::ArtifactError> for ApiError {
    fn from(e: nimbus_artifact::ArtifactError) -> Self {
        if e.is_user_error() {
            ApiError::invalid(e.to_string())
        } else {
            ApiError::service(e.to_string())
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
