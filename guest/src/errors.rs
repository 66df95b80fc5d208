//! IRMA error responses (irma-server.md §1.2): a name, its HTTP status and fixed description.

use alloc::string::String;
use serde::Serialize;

use crate::Response;

/// The error names the session server emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidRequest,
    MalformedInput,
    SessionUnknown,
    ProtocolVersion,
    InvalidProofs,
    AttributesExpired,
    Unauthorized,
    UnauthorizedSession,
    PairingRequired,
    UnexpectedRequest,
    UnknownPublicKey,
    KeyshareProofMissing,
    Exception,
    IssuanceFailed,
    InternalError,
    NextSession,
    Unsupported,
}

impl ErrorKind {
    pub fn name(self) -> &'static str {
        use ErrorKind::*;
        match self {
            InvalidRequest => "INVALID_REQUEST",
            MalformedInput => "MALFORMED_INPUT",
            SessionUnknown => "SESSION_UNKNOWN",
            ProtocolVersion => "PROTOCOL_VERSION",
            InvalidProofs => "INVALID_PROOFS",
            AttributesExpired => "ATTRIBUTES_EXPIRED",
            Unauthorized | UnauthorizedSession => "UNAUTHORIZED",
            PairingRequired => "PAIRING_REQUIRED",
            UnexpectedRequest => "UNEXPECTED_REQUEST",
            UnknownPublicKey => "UNKNOWN_PUBLIC_KEY",
            KeyshareProofMissing => "KEYSHARE_PROOF_MISSING",
            Exception => "EXCEPTION",
            IssuanceFailed => "ISSUANCE_FAILED",
            InternalError => "INTERNAL_ERROR",
            NextSession => "NEXT_SESSION",
            Unsupported => "UNSUPPORTED",
        }
    }

    pub fn status(self) -> u16 {
        use ErrorKind::*;
        match self {
            InvalidRequest | MalformedInput | SessionUnknown | ProtocolVersion | InvalidProofs
            | AttributesExpired => 400,
            Unauthorized | UnauthorizedSession | PairingRequired | UnexpectedRequest
            | UnknownPublicKey | KeyshareProofMissing => 403,
            Exception | IssuanceFailed | InternalError | NextSession => 500,
            Unsupported => 501,
        }
    }

    pub fn description(self) -> &'static str {
        use ErrorKind::*;
        match self {
            InvalidRequest => "Invalid HTTP request",
            MalformedInput => "Input could not be parsed",
            SessionUnknown => "Unknown or expired session",
            ProtocolVersion => "Protocol version negotiation failed",
            InvalidProofs => "Invalid secret key commitments and/or disclosure proofs",
            AttributesExpired => "Disclosed attributes were expired",
            Unauthorized => "You are not authorized to issue or verify this attribute",
            UnauthorizedSession => "You are not authorized to access the session",
            PairingRequired => "Pairing is required first",
            UnexpectedRequest => "Unexpected request in this state",
            UnknownPublicKey => "Attributes were not valid against a known public key",
            KeyshareProofMissing => "ProofP object from a keyshare server missing",
            Exception => "Encountered unexpected problem",
            IssuanceFailed => "Failed to create credential(s)",
            InternalError => "Internal server error",
            NextSession => "Error starting next session",
            Unsupported => "Unsupported by this server",
        }
    }
}

/// An IRMA error with an optional detail message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IrmaError {
    pub kind: ErrorKind,
    pub message: String,
}

/// The JSON body of an error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ErrorBody {
    pub status: u16,
    pub error: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

impl IrmaError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> IrmaError {
        IrmaError {
            kind,
            message: message.into(),
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            status: self.kind.status(),
            error: self.kind.name().into(),
            description: self.kind.description().into(),
            message: self.message.clone(),
        }
    }

    pub fn response(&self) -> Response {
        Response::json(self.kind.status(), &self.body())
    }
}

pub fn err(kind: ErrorKind, message: impl Into<String>) -> IrmaError {
    IrmaError::new(kind, message)
}
