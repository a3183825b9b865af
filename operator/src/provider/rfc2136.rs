//! The rfc2136 provider. Being written in this change: until it lands, building
//! one reports that it is not available, and nothing is sent anywhere.

use zentralink_model::resources::Rfc2136Settings;
use zentralink_model::secrets::SecretString;

use super::resilience::Limits;
use super::{Provider, ProviderError};

/// The rfc2136 provider.
#[derive(Debug)]
pub struct Rfc2136Provider;

impl Rfc2136Provider {
    pub fn connect(
        _settings: &Rfc2136Settings,
        _credentials: SecretString,
        _limits: Limits,
    ) -> Result<Box<dyn Provider>, ProviderError> {
        Err(ProviderError::Unsupported(
            "the rfc2136 provider is not available in this build yet".into(),
        ))
    }
}
