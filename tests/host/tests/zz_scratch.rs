mod common;
use bytes::Bytes;
use common::*;
use std::time::Instant;

#[tokio::test(flavor = "current_thread")]
async fn scratch() {
    for (m, t) in [("8192", "1"), ("19456", "2"), ("65536", "1")] {
        let app = App::start(
            &[
                ("issuer", ISSUER),
                ("dev_mode", "true"),
                ("argon2_memory_kib", m),
                ("argon2_iterations", t),
                ("login_max_failures", "1000"),
                ("login_address_max_failures", "1000"),
            ],
            &[],
        )
        .await;
        let mut b = Browser::new(&app);
        b.get("/login").await;
        let mut v = vec![];
        for _ in 0..6 {
            let tt = Instant::now();
            let r = b
                .post(
                    "/login",
                    &[("email", "x@example.com"), ("password", "wrong password")],
                )
                .await;
            v.push(tt.elapsed().as_secs_f64() * 1e3);
            assert_eq!(r.status(), 401);
        }
        let tt = Instant::now();
        for _ in 0..6 {
            app.get("/static/lanyard.css").await;
        }
        eprintln!(
            "m={m} t={t}: login {:?} css {:.2}ms",
            v.iter().map(|x| format!("{x:.1}")).collect::<Vec<_>>(),
            tt.elapsed().as_secs_f64() * 1e3 / 6.0
        );
        let _ = Bytes::new();
        use argon2::password_hash::{PasswordHasher, SaltString};
        let params = argon2::Params::new(m.parse().unwrap(), t.parse().unwrap(), 1, None).unwrap();
        let a2 = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let salt = SaltString::encode_b64(b"benchmark-salt-1").unwrap();
        let mut nv = vec![];
        for _ in 0..6 {
            let tt = Instant::now();
            a2.hash_password(b"x", &salt).unwrap();
            nv.push(format!("{:.1}", tt.elapsed().as_secs_f64() * 1e3));
        }
        eprintln!("   native {nv:?}");
    }
}
