//! One request at a time over an rtnetlink socket: send a message, collect the answers until
//! the kernel's ACK (or the end of a dump), turn a NACK into its errno.
use std::io;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;

/// An rtnetlink socket bound to the caller's network namespace.
pub(crate) struct Rtnl {
    sock: Socket,
    seq: u32,
}

/// How a request is answered.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// A change: the answers (an echo, if asked) up to the ACK.
    Ack,
    /// A dump: every message up to NLMSG_DONE.
    Dump,
}

impl Rtnl {
    pub(crate) fn open() -> io::Result<Rtnl> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Rtnl { sock, seq: 0 })
    }

    /// Sends `msg` with `flags` (NLM_F_REQUEST and the ACK/DUMP flag are added) and returns
    /// the route messages the kernel answered with.
    pub(crate) fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        answer: Answer,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let mut packet = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(msg));
        packet.header.flags = NLM_F_REQUEST
            | flags
            | match answer {
                Answer::Ack => NLM_F_ACK,
                Answer::Dump => NLM_F_DUMP,
            };
        packet.header.sequence_number = self.seq;
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.sock.send(&buf, 0)?;

        let mut out = Vec::new();
        loop {
            let (bytes, _) = self.sock.recv_from_full()?;
            let mut off = 0;
            while off + NLMSG_HDRLEN <= bytes.len() {
                let header = &bytes[off..off + NLMSG_HDRLEN];
                let len = u32::from_ne_bytes([header[0], header[1], header[2], header[3]]) as usize;
                let kind = u16::from_ne_bytes([header[4], header[5]]);
                if len < NLMSG_HDRLEN || off + len > bytes.len() {
                    break;
                }
                let one = &bytes[off..off + len];
                // Messages start on 4-byte boundaries (NLMSG_ALIGN).
                off += (len + 3) & !3;
                let m: NetlinkMessage<RouteNetlinkMessage> = match NetlinkMessage::deserialize(one)
                {
                    Ok(m) => m,
                    // An answer with attributes this crate cannot parse (a classifier it
                    // does not know, say) is skipped; only the ACK and the end of a dump
                    // matter for the exchange itself.
                    Err(_) if kind != NLMSG_ERROR && kind != NLMSG_DONE => continue,
                    Err(e) => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("rtnetlink: {e}"),
                        ))
                    }
                };
                if m.header.sequence_number != self.seq {
                    continue;
                }
                match m.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(out),
                            Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                        }
                    }
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::InnerMessage(inner) => out.push(inner),
                    _ => {}
                }
            }
        }
    }
}
