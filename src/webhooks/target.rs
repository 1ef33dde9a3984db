//! Where webhooks may go. Endpoints are the integrators' servers on the public internet; a
//! URL that leads back into the network dishpatch runs in (loopback, private ranges, link-local
//! and the cloud metadata service, multicast, reserved space; IPv4, IPv6 and IPv4 inside IPv6)
//! is refused when it is saved and again at every attempt, on the addresses the name resolves
//! to then: a DNS answer that changes after the check cannot redirect a delivery, because the
//! connection goes to the very addresses that were checked. Redirects are never followed.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    time::Duration,
};

use reqwest::{
    Url,
    dns::{Addrs, Name, Resolve, Resolving},
};

/// Longest endpoint URL.
pub const MAX_URL_CHARS: usize = 2048;
/// How long the check on save waits for DNS.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// Why an endpoint URL is refused, in words for the user.
pub type Refusal = String;

/// Checks the form of `url`: absolute `https` (or `http` with private targets allowed), a
/// host, no credentials, no fragment.
pub fn parse(url: &str, allow_private: bool) -> Result<Url, Refusal> {
    if url.chars().count() > MAX_URL_CHARS {
        return Err(format!(
            "a URL of at most {MAX_URL_CHARS} characters is needed"
        ));
    }
    let parsed = Url::parse(url.trim()).map_err(|error| format!("not a valid URL: {error}"))?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_private => {}
        "http" => return Err("the URL must use https".into()),
        other => return Err(format!("`{other}` URLs cannot receive webhooks; use https")),
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("the URL needs a host".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("the URL must not carry credentials; the signature authenticates us".into());
    }
    if parsed.fragment().is_some() {
        return Err("the URL must not have a fragment".into());
    }
    Ok(parsed)
}

/// Checks where `url` leads now: its address, or every address its name resolves to.
pub async fn check_destination(url: &Url, allow_private: bool) -> Result<(), Refusal> {
    if allow_private {
        return Ok(());
    }
    let host = url.host().ok_or("the URL needs a host")?;
    let addresses: Vec<IpAddr> = match host {
        url::Host::Ipv4(ip) => vec![IpAddr::V4(ip)],
        url::Host::Ipv6(ip) => vec![IpAddr::V6(ip)],
        url::Host::Domain(name) => {
            let lookup =
                tokio::net::lookup_host((name, url.port_or_known_default().unwrap_or(443)));
            match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
                Ok(Ok(found)) => found.map(|address| address.ip()).collect(),
                Ok(Err(_)) | Err(_) => return Err(format!("`{name}` cannot be resolved")),
            }
        }
    };
    public_only(&addresses)
}

/// Checks `url` when its host is an address (names are checked as they are resolved).
pub fn check_literal(url: &Url, allow_private: bool) -> Result<(), Refusal> {
    if allow_private {
        return Ok(());
    }
    match url.host() {
        Some(url::Host::Ipv4(ip)) => public_only(&[IpAddr::V4(ip)]),
        Some(url::Host::Ipv6(ip)) => public_only(&[IpAddr::V6(ip)]),
        Some(url::Host::Domain(_)) => Ok(()),
        None => Err("the URL needs a host".into()),
    }
}

/// Refuses a list of addresses that is empty or holds any non-public one.
fn public_only(addresses: &[IpAddr]) -> Result<(), Refusal> {
    if addresses.is_empty() {
        return Err("the host has no addresses".into());
    }
    match addresses.iter().find(|ip| !is_public(**ip)) {
        Some(ip) => Err(format!(
            "the URL leads to {ip}, a private, loopback, link-local or reserved address"
        )),
        None => Ok(()),
    }
}

/// Whether `ip` is an address on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16, with the cloud metadata service
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let segments = ip.segments();
    // NAT64 (64:ff9b::/96) reaches the IPv4 address inside it.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [_, _, _, _, _, _, high, low] = segments;
        return is_public_v4(Ipv4Addr::from((u32::from(high) << 16) | u32::from(low)));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00 // unique local, with AWS's fd00:ec2::254
        || (segments[0] & 0xffc0) == 0xfe80 // link-local
        || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
        || segments[..5] == [0, 0, 0, 0, 0]) // IPv4-compatible and other ::/80 forms
}

/// The resolver deliveries connect through: the system's, refusing names that resolve to any
/// non-public address (unless allowed).
#[derive(Debug)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if !allow_private {
                let ips: Vec<IpAddr> = found.iter().map(SocketAddr::ip).collect();
                public_only(&ips).map_err(
                    |refusal| -> Box<dyn std::error::Error + Send + Sync> { refusal.into() },
                )?;
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_targets() {
        for private in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd00:ec2::254",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "::127.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private} passed");
        }
        for public in [
            "93.184.215.14",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public} refused");
        }
    }

    #[test]
    fn urls_are_https_without_credentials() {
        assert!(parse("https://hooks.example.com/in", false).is_ok());
        assert!(parse("http://hooks.example.com/in", false).is_err());
        assert!(parse("http://hooks.example.com/in", true).is_ok());
        assert!(parse("ftp://hooks.example.com/in", true).is_err());
        assert!(parse("https://user:pw@hooks.example.com/in", false).is_err());
        assert!(parse("https://hooks.example.com/in#x", false).is_err());
        assert!(parse("/relative", false).is_err());
        assert!(parse(&format!("https://a.example/{}", "x".repeat(2100)), false).is_err());
    }
}
