//! The status every answer carries, on every path: a string equal to the HTTP
//! status the Function URL would answer. One observation (a request body, a
//! CSV row, a queue results line, a Distributed Map item) is `200` when scored
//! and `400` when rejected; the Function URL adds the statuses of requests
//! that carry no observation. It lives in the core, not in `contract`,
//! because the CSV pipeline writes it into every row.

use serde::{Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Scored.
    Ok,
    /// Rejected: the input is not a valid observation.
    BadRequest,
    NotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    /// Never for bad input; only if an answer could not be written at all.
    InternalServerError,
}

impl Status {
    pub const fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::BadRequest => 400,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::PayloadTooLarge => 413,
            Status::InternalServerError => 500,
        }
    }

    /// The code as the answers spell it: `"200"`, `"400"`, ...
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "200",
            Status::BadRequest => "400",
            Status::NotFound => "404",
            Status::MethodNotAllowed => "405",
            Status::PayloadTooLarge => "413",
            Status::InternalServerError => "500",
        }
    }

    /// HTTP's reason phrase; `"OK"` is the `reason` of every scored observation.
    pub const fn reason_phrase(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::BadRequest => "Bad Request",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::PayloadTooLarge => "Payload Too Large",
            Status::InternalServerError => "Internal Server Error",
        }
    }
}

/// As the string the contract has always sent (`"status":"200"`).
impl Serialize for Status {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_is_the_string_of_its_http_code() {
        for s in [
            Status::Ok,
            Status::BadRequest,
            Status::NotFound,
            Status::MethodNotAllowed,
            Status::PayloadTooLarge,
            Status::InternalServerError,
        ] {
            assert_eq!(s.as_str(), s.code().to_string());
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{}\"", s.code()));
            assert_eq!(http::StatusCode::from_u16(s.code()).unwrap().canonical_reason(), Some(s.reason_phrase()));
        }
    }
}
