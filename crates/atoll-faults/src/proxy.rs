//! A TCP proxy on one direction of an inter-node link: node A reaches node
//! B through it (A's `--peers` names the proxy for B), so the nemesis can
//! cut the link — drop its connections and refuse new ones — and heal it.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// One proxied link.
pub struct Proxy {
    /// Where the proxy listens.
    pub addr: SocketAddr,
    cut: watch::Sender<bool>,
}

impl Proxy {
    /// Listens on `listen` and forwards every connection to `target`.
    pub async fn start(listen: &str, target: String) -> std::io::Result<Arc<Proxy>> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let (cut, cut_rx) = watch::channel(false);
        tokio::spawn(accept(listener, target, cut_rx));
        Ok(Arc::new(Proxy { addr, cut }))
    }

    /// Cuts (`true`) or heals (`false`) the link.
    pub fn set_cut(&self, cut: bool) {
        let _ = self.cut.send(cut);
    }
}

async fn accept(listener: TcpListener, target: String, cut: watch::Receiver<bool>) {
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            continue;
        };
        if *cut.borrow() {
            // Refused: the connection closes at once.
            continue;
        }
        let target = target.clone();
        let mut cut = cut.clone();
        tokio::spawn(async move {
            let Ok(mut outbound) = TcpStream::connect(&target).await else {
                return;
            };
            let mut inbound = inbound;
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                _ = cut.wait_for(|cut| *cut) => {}
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn a_cut_link_drops_and_refuses_and_a_healed_one_carries() {
        let echo = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let echo_addr = echo.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = stream.read(&mut buf).await {
                        if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let proxy = Proxy::start("127.0.0.1:0", echo_addr.to_string())
            .await
            .expect("proxy");
        let roundtrip = |addr: SocketAddr| async move {
            let mut stream = TcpStream::connect(addr).await.ok()?;
            stream.write_all(b"ping").await.ok()?;
            let mut buf = [0u8; 4];
            tokio::time::timeout(
                std::time::Duration::from_secs(1),
                stream.read_exact(&mut buf),
            )
            .await
            .ok()?
            .ok()?;
            Some(buf)
        };
        assert_eq!(roundtrip(proxy.addr).await, Some(*b"ping"));
        let mut open = TcpStream::connect(proxy.addr).await.expect("connect");
        open.write_all(b"x").await.expect("write");
        let mut one = [0u8; 1];
        open.read_exact(&mut one).await.expect("echo");
        proxy.set_cut(true);
        assert_eq!(
            roundtrip(proxy.addr).await,
            None,
            "a cut link carries nothing"
        );
        let mut rest = [0u8; 1];
        let read = tokio::time::timeout(std::time::Duration::from_secs(1), open.read(&mut rest))
            .await
            .expect("the open connection is closed, not left hanging");
        assert!(matches!(read, Ok(0) | Err(_)));
        proxy.set_cut(false);
        assert_eq!(roundtrip(proxy.addr).await, Some(*b"ping"));
    }
}
