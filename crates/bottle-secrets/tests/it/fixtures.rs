//! Synthetic credentials: the right shape, random bodies, valid checksums, never real.
//!
//! Each literal is split (`concat!("gh", "p_…")`) so that no scanner — ours in a git gate,
//! gitleaks, GitHub's push protection — flags this file itself.

use bottle_secrets::Detector;

/// A credential as it is matched, and what follows it in its text (the rest of a PEM block).
#[derive(Clone, Debug)]
pub(crate) struct Sample {
    pub(crate) detector: Detector,
    pub(crate) what: &'static str,
    /// Exactly the bytes a match covers.
    pub(crate) token: String,
    /// Bytes after the token that belong with it (not part of the match).
    pub(crate) tail: String,
}

impl Sample {
    fn new(detector: Detector, what: &'static str, token: impl Into<String>) -> Sample {
        Sample {
            detector,
            what,
            token: token.into(),
            tail: String::new(),
        }
    }

    fn with_tail(mut self, tail: impl Into<String>) -> Sample {
        self.tail = tail.into();
        self
    }

    /// The token and its tail.
    pub(crate) fn text(&self) -> String {
        format!("{}{}", self.token, self.tail)
    }
}

pub(crate) const JWT_HS256: &str = concat!(
    "ey",
    "JhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkJvdHRsZSBUZXN0IiwiaWF0IjoxNzY1NTg0MDAwfQ",
    ".5k5fmIgPWlbYiPp9TCEWwDUywAyMJz0O0DjSElP5T7M",
);

const PEM_BODY: &str = concat!(
    "b5JgWauE0g5sqksZMfdMZ/xTGp4sGIRF50r0Oo/vCfuZ2Whu9CM1QaOc016vBsbK\n",
    "MfRwPj8Az33T6Du58M4NtixbXpNiSnMOYJX2xIFM/XXYfPIoQUMC0PqXDM+R+9AN\n",
);

/// One or more samples for every detector and every keyword.
pub(crate) fn positives() -> Vec<Sample> {
    use Detector::*;
    vec![
        Sample::new(AwsAccessKeyId, "long-term key", concat!("AK", "IAFJLMVGEG43FAYH2P")),
        Sample::new(AwsAccessKeyId, "STS key", concat!("AS", "IAFLIOG34AT3H2GX3P")),
        Sample::new(AwsAccessKeyId, "bearer key", concat!("AB", "IAHVBDVJNS7XNBCU3H")),
        Sample::new(AwsAccessKeyId, "context key", concat!("AC", "CAXMRXQMFE7YHHKXQV")),
        Sample::new(GithubToken, "classic PAT", concat!("gh", "p_sws4H4ELXD34L2hbw8nuYLhdad4gVS3qCwVR")),
        Sample::new(GithubToken, "OAuth token", concat!("gh", "o_54Xnw6GcrXNeiaJ0LZUAevhohaUmAn3zN3Ea")),
        Sample::new(GithubToken, "user-to-server", concat!("gh", "u_IhQ9GbYdz9sWv7WqJLka7ga1Feufz40ngR97")),
        Sample::new(GithubToken, "server-to-server", concat!("gh", "s_U5fBZY8miI6ZB0cqDAR20LpASyHKNQ0Oe3Ak")),
        Sample::new(GithubToken, "refresh token", concat!("gh", "r_4xMYqNEV7xFWwe5fg9I9D1lUDoQffs0rhX7I")),
        Sample::new(
            GithubToken,
            "stateless installation token",
            concat!(
                "gh",
                "s_5512033_eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0",
                ".eyJpc3MiOiJJdjEiLCJpbnN0Ijo1NTEyMDMzMSwiZXhwIjoxNzY1NTg3NjAwfQ",
                ".mUqB-Kmjbh6dJfYj5w7WOBoCsph2MzT_GhlamHnLntL8e83PGjdcODRyfSj-qvZTQ4MjTquyBKzg6esEROxYZQ",
            ),
        ),
        Sample::new(
            GithubToken,
            "fine-grained PAT",
            concat!(
                "github",
                "_pat_iofuB6gkZO776G2a28EIZm_gDfrZAwnEUGcajFpzaCfwO0slfpMisGXefeigQq0Sm3DOcxT9G7a72K6hgo",
            ),
        ),
        Sample::new(
            AnthropicApiKey,
            "API key",
            concat!(
                "sk-",
                "ant-api03-Mtx-i0zHslth9j3DnFlWsZrPfvawNR3gKotuLvWR3_fwGmnHY1xWonmJmHq_N7W5cWCCIdSzWft3ujf-AqdzS7yC-cdtcAA",
            ),
        ),
        Sample::new(
            AnthropicApiKey,
            "admin key",
            concat!(
                "sk-",
                "ant-admin01-spyTb4z5J2WZ2vqWADhUa5yi1K0zYK9cW5CBJzZh0XAXcb6yhvjhf2NNSEVYp7_Vs-nIHnO3VndgUARfIwmThiVJIVOjRAA",
            ),
        ),
        Sample::new(
            AnthropicOauthToken,
            "OAuth access token",
            concat!(
                "sk-",
                "ant-oat01-5YGJHVLJ0tYjKSVKKdCTSPIoMIe7e8jYzphf5fI3Zb-on9Nj0G5TgDuD_YGFK7DiZ7b65PFaMKJUYL1meQUWK451LqQqGAA",
            ),
        ),
        Sample::new(
            AnthropicOauthToken,
            "OAuth refresh token",
            concat!(
                "sk-",
                "ant-ort01-DEAT6rLFqbKGAr3Yq4n6nikol9ziQcIkiq2idtBv7rETe6Jbnjsw-RKF3zbmmdo1GWuOW6xDnXZeGxeuDYSFeG79aKE6YAA",
            ),
        ),
        Sample::new(OpenaiApiKey, "legacy key", concat!("sk", "-1KA87j0JZFaojaRQZLf4T3BlbkFJmEXq96v3BsZiie01BqJB")),
        Sample::new(
            OpenaiApiKey,
            "project key",
            concat!(
                "sk",
                "-proj-Ws1I20zbz6a8XoAV5WwtxRylMmByfasGsHLU_j8pU9LMYr8DK3AN9oA9SbDpzdq_0H9tkDhY3j",
                "T3BlbkFJw3YfgKJz3JrRGw5ghXPRgni1fB78oGAXmlFUuJcLgu1NsdpccohUNsW0VB19tGbLgOJoK6TvNj",
            ),
        ),
        Sample::new(
            OpenaiApiKey,
            "service-account key",
            concat!(
                "sk",
                "-svcacct-b7o2i1I3IbZgDs3ybPLVa7C2oBFZDuk4eZPYOVJQ2Pnaj1sb9bGHUvkQxw",
                "T3BlbkFJLhWwOHMlkY-DZIa5277capxR5yDwgH4V5F65m_4m2Klodo2-vXXfOdepNi",
            ),
        ),
        Sample::new(StripeLiveKey, "secret key", concat!("sk", "_live_VR1pFm1GH3h3kPvD8myIjcx1")),
        Sample::new(
            StripeLiveKey,
            "restricted key",
            concat!(
                "rk",
                "_live_idaNIyCYHTVeQCITgwvRgY4wx1n9R6pUb9UlUIwKEhUSSmp1Ag4Lwg6RqI5HzIVpNjfGGZWYQ8f46ERXpmkw9kFEjaHuk5tz8oK",
            ),
        ),
        Sample::new(
            SlackToken,
            "bot token",
            concat!("xo", "xb-0769336445-8069555816286-3knbzZWZ1MjPKwWDjWwDBR9k"),
        ),
        Sample::new(
            SlackToken,
            "user token",
            concat!("xo", "xp-5112646566-4878169289-358162974641-77c099c5831176f0c7a775232fbc6def"),
        ),
        Sample::new(SlackToken, "workspace app token", concat!("xo", "xa-2-4878169289-3knbzZWZ1MjPKwWD")),
        Sample::new(SlackToken, "refresh token", concat!("xo", "xr-1-5112646566-77c099c5831176f0c7a7")),
        Sample::new(SlackToken, "session token", concat!("xo", "xs-358162974641-8069555816286-WDjWwDBR9k")),
        Sample::new(
            SlackWebhookUrl,
            "incoming webhook",
            concat!("hooks.", "slack.com/services/T35H1NCEP/BPTLRE8IAM6/ldlj3UXIz7ZvBFFgyhP97Qm5"),
        ),
        Sample::new(
            SlackWebhookUrl,
            "workflow webhook",
            concat!("hooks.", "slack.com/workflows/T35H1NCEP/A04KJ2Q9X7Z/512093355/ldlj3UXIz7ZvBFFgyhP9"),
        ),
        Sample::new(GoogleApiKey, "API key", concat!("AI", "zaXL74cx47fgL6mnqVqKjM_tyAMOMucv_DXND")),
        Sample::new(
            PrivateKey,
            "PKCS#1 RSA",
            format!("{}\n{}", concat!("-----BEG", "IN RSA PRIVATE KEY-----"), &PEM_BODY[..32]),
        )
        .with_tail(format!("{}-----END RSA PRIVATE KEY-----\n", &PEM_BODY[32..])),
        Sample::new(
            PrivateKey,
            "PKCS#8 in a JSON string",
            format!(r"{}\n{}", concat!("-----BEG", "IN PRIVATE KEY-----"), &PEM_BODY[..32]),
        )
        .with_tail(format!(
            r#"{}\n-----END PRIVATE KEY-----\n","client_email":"x@y.iam.gserviceaccount.com""#,
            PEM_BODY[32..].replace('\n', r"\n"),
        )),
        Sample::new(
            PrivateKey,
            "encrypted PEM",
            format!(
                "{}\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,3F17F5316E2BAC89A2D1E8A7F1AB2C4D\n\n{}",
                concat!("-----BEG", "IN RSA PRIVATE KEY-----"),
                &PEM_BODY[..32],
            ),
        )
        .with_tail(format!("{}-----END RSA PRIVATE KEY-----\n", &PEM_BODY[32..])),
        Sample::new(
            PrivateKey,
            "OpenSSH key, CRLF and indented",
            concat!("-----BEG", "IN OPENSSH PRIVATE KEY-----\r\n  b3BlbnNzaC1rZXktdjEAAAAABG5vbmUA"),
        )
        .with_tail("AAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\r\n  -----END OPENSSH PRIVATE KEY-----\r\n"),
        Sample::new(
            PrivateKey,
            "PGP key block",
            format!(
                "{}\nVersion: GnuPG v2\n\n{}",
                concat!("-----BEG", "IN PGP PRIVATE KEY BLOCK-----"),
                &PEM_BODY[..32],
            ),
        )
        .with_tail(format!("{}=Xk2a\n-----END PGP PRIVATE KEY BLOCK-----\n", &PEM_BODY[32..])),
        Sample::new(Jwt, "HS256 token", JWT_HS256),
    ]
}

/// Near misses: text that looks like a credential and is not one. Scanning each finds nothing.
pub(crate) fn negatives() -> Vec<(&'static str, String)> {
    let s = |what: &'static str, text: &str| (what, text.to_owned());
    vec![
        s("AWS: 15 characters", concat!("id=AK", "IAFJLMVGEG43FAYH2 ")),
        s(
            "AWS: 17 characters",
            concat!("id=AK", "IAFJLMVGEG43FAYH2PQ "),
        ),
        s(
            "AWS: a digit outside base32",
            concat!("id=AK", "IAFJLMVGEG43FAYH1P "),
        ),
        s("AWS: lower case", concat!("id=ak", "iafjlmvgeg43fayh2p ")),
        s(
            "AWS: inside a longer word",
            concat!("id=XAK", "IAFJLMVGEG43FAYH2P "),
        ),
        s("AWS: placeholder", concat!("id=AK", "IAXXXXXXXXXXXXXXXX ")),
        s(
            "AWS: unknown prefix",
            concat!("id=AK", "IBFJLMVGEG43FAYH2P "),
        ),
        s(
            "GitHub: wrong checksum",
            concat!("t=gh", "p_sws4H4ELXD34L2hbw8nuYLhdad4gVS3qCwVS "),
        ),
        s(
            "GitHub: placeholder",
            concat!("t=gh", "p_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx "),
        ),
        s(
            "GitHub: 35 characters",
            concat!("t=gh", "p_sws4H4ELXD34L2hbw8nuYLhdad4gVS3qCwV "),
        ),
        s(
            "GitHub: 37 characters",
            concat!("t=gh", "p_sws4H4ELXD34L2hbw8nuYLhdad4gVS3qCwVRa "),
        ),
        s(
            "GitHub: unknown kind",
            concat!("t=gh", "x_sws4H4ELXD34L2hbw8nuYLhdad4gVS3qCwVR "),
        ),
        s(
            "GitHub: inside a word",
            concat!("t=agh", "p_sws4H4ELXD34L2hbw8nuYLhdad4gVS3qCwVR "),
        ),
        s(
            "GitHub stateless: header is not JSON",
            concat!(
                "t=gh",
                "s_5512033_eyJub3QganNvbiBhdCBhbGwsIGp1c3QgdGV4dA.eyJpc3MiOiJJdjEifQ.mUqB-Kmjbh6dJfYj5w7WOBoC "
            ),
        ),
        s(
            "GitHub fine-grained: no separator",
            concat!(
                "t=github",
                "_pat_iofuB6gkZO776G2a28EIZmxgDfrZAwnEUGcajFpzaCfwO0slfpMisGXefeigQq0Sm3DOcxT9G7a72K6hgo ",
            ),
        ),
        s(
            "Anthropic: body too short",
            concat!("k=sk-", "ant-api03-Mtx-i0zHslth9j3DnFlWsZrPfvawNR3 "),
        ),
        s(
            "Anthropic: placeholder",
            concat!(
                "k=sk-",
                "ant-api03-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx "
            ),
        ),
        s(
            "Anthropic: no kind",
            concat!(
                "k=sk-",
                "ant-Mtx-i0zHslth9j3DnFlWsZrPfvawNR3gKotuLvWR3_fwGmnHY1x "
            ),
        ),
        s(
            "OpenAI: no T3BlbkFJ marker",
            concat!("k=sk", "-1KA87j0JZFaojaRQZLf4mEXq96v3BsZiie01BqJBxyzwvuts "),
        ),
        s(
            "OpenAI: inside a word (task-…)",
            concat!(
                "k=ta",
                "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 "
            ),
        ),
        s(
            "Stripe: test key",
            concat!("k=sk", "_test_VR1pFm1GH3h3kPvD8myIjcx1 "),
        ),
        s(
            "Stripe: 19 characters",
            concat!("k=sk", "_live_VR1pFm1GH3h3kPvD8my "),
        ),
        s(
            "Stripe: inside a word (disk_live_…)",
            concat!("k=di", "sk_live_VR1pFm1GH3h3kPvD8myIjcx1 "),
        ),
        s(
            "Stripe: placeholder",
            concat!("k=sk", "_live_0000000000000000000000000000 "),
        ),
        s(
            "Slack: words, no numbers",
            concat!("t=xo", "xb-your-bot-token-here "),
        ),
        s(
            "Slack: placeholder",
            concat!("t=xo", "xb-0000000000-0000000000-xxxxxxxxxxxxxxxxxxxxxxxx "),
        ),
        s(
            "Slack: unknown kind",
            concat!(
                "t=xo",
                "xz-0769336445-8069555816286-3knbzZWZ1MjPKwWDjWwDBR9k "
            ),
        ),
        s(
            "Slack webhook: path too short",
            concat!("u=https://hooks.", "slack.com/services/T35H1NCEP/BPTL "),
        ),
        s(
            "Slack webhook: another path",
            concat!(
                "u=https://hooks.",
                "slack.com/api/T35H1NCEP/BPTLRE8IAM6/ldlj3UXIz7ZvBFFgyhP97Qm5 "
            ),
        ),
        s(
            "Slack webhook: the documentation's example",
            concat!(
                "u=https://hooks.",
                "slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX "
            ),
        ),
        s(
            "Google: 34 characters",
            concat!("k=AI", "zaXL74cx47fgL6mnqVqKjM_tyAMOMucv_DXN "),
        ),
        s(
            "Google: inside a base64 blob",
            concat!(
                "img=iVBORw0KGgoAI",
                "zaXL74cx47fgL6mnqVqKjM_tyAMOMucv_DXND0AAAANSUhEUg=="
            ),
        ),
        s(
            "PEM: a public key",
            concat!(
                "-----BEG",
                "IN PUBLIC KEY-----\nb5JgWauE0g5sqksZMfdMZ/xTGp4sGIRF50r0Oo/vCfuZ2\n"
            ),
        ),
        s(
            "PEM: the header as a constant in code",
            concat!(
                "const HEADER: &str = \"-----BEG",
                "IN PRIVATE KEY-----\";\nlet body = parse(input);\n"
            ),
        ),
        s(
            "PEM: a body shorter than 32 characters",
            concat!(
                "-----BEG",
                "IN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----\n"
            ),
        ),
        s(
            "JWT: header is not JSON",
            concat!(
                "t=ey",
                "Jub3QganNvbiBhdCBhbGwsIGp1c3QgdGV4dA.eyJzdWIiOiIxMjM0NTY3ODkwIn0.5k5fmIgPWlbYiPp9TCEWwDUy ",
            ),
        ),
        s(
            "JWT: header without alg",
            concat!(
                "t=ey",
                "J0eXAiOiJKV1QiLCJraWQiOiJhYmMifQ.eyJzdWIiOiIxMjM0NTY3ODkwIn0.5k5fmIgPWlbYiPp9TCEWwDUy ",
            ),
        ),
        s(
            "JWT: unsigned (alg none, no signature)",
            concat!("t=ey", "JhbGciOiJub25lIn0.eyJzdWIiOiIxMjM0NTY3ODkwIn0. "),
        ),
        s(
            "JWT: two parts",
            concat!(
                "t=ey",
                "JhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0 "
            ),
        ),
    ]
}
