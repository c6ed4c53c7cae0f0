//! PostGIS's extended well-known binary (EWKB) for 2-D geometries: OGC WKB whose outer type word
//! carries the flag `0x20000000` and, after it, the SRID. PostGIS prints a geometry as this, in hex
//! (`geometry_out`), and reads it back (`geometry_in`); MySQL/MariaDB hold the same geometry as
//! SRID + plain WKB ([`super::Value::Geometry`]). Geometries with Z or M coordinates have no
//! MySQL/MariaDB form and are left alone (`None`).

const SRID_FLAG: u32 = 0x2000_0000;
const Z_FLAG: u32 = 0x8000_0000;
const M_FLAG: u32 = 0x4000_0000;

/// Hex EWKB -> (SRID, WKB); `None` when it is not 2-D EWKB.
pub fn from_hex(hex: &str) -> Option<(u32, Vec<u8>)> {
    let bytes = decode_hex(hex)?;
    let (&order, rest) = bytes.split_first()?;
    let (ty, rest) = rest.split_first_chunk::<4>()?;
    let word = |b: [u8; 4]| match order {
        0 => Some(u32::from_be_bytes(b)),
        1 => Some(u32::from_le_bytes(b)),
        _ => None,
    };
    let ty = word(*ty)?;
    if ty & (Z_FLAG | M_FLAG) != 0 {
        return None;
    }
    let (srid, rest) = if ty & SRID_FLAG != 0 {
        let (s, rest) = rest.split_first_chunk::<4>()?;
        (word(*s)?, rest)
    } else {
        (0, rest)
    };
    let plain = ty & !SRID_FLAG;
    let mut wkb = Vec::with_capacity(rest.len() + 5);
    wkb.push(order);
    wkb.extend_from_slice(&if order == 0 {
        plain.to_be_bytes()
    } else {
        plain.to_le_bytes()
    });
    wkb.extend_from_slice(rest);
    Some((srid, wkb))
}

/// (SRID, WKB) -> hex EWKB, as PostGIS prints it (the SRID only when it is not 0).
pub fn to_hex(srid: u32, wkb: &[u8]) -> String {
    let mut out = Vec::with_capacity(wkb.len() + 4);
    match (srid, wkb.split_first(), wkb.get(1..5)) {
        (0, ..) | (_, None, _) | (_, _, None) => out.extend_from_slice(wkb),
        (_, Some((&order, _)), Some(ty)) => {
            let ty: [u8; 4] = [ty[0], ty[1], ty[2], ty[3]];
            let (ty, srid) = if order == 0 {
                (
                    (u32::from_be_bytes(ty) | SRID_FLAG).to_be_bytes(),
                    srid.to_be_bytes(),
                )
            } else {
                (
                    (u32::from_le_bytes(ty) | SRID_FLAG).to_le_bytes(),
                    srid.to_le_bytes(),
                )
            };
            out.push(order);
            out.extend_from_slice(&ty);
            out.extend_from_slice(&srid);
            out.extend_from_slice(&wkb[5..]);
        }
    }
    out.iter().map(|b| format!("{b:02X}")).collect()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    let h = hex.as_bytes();
    if h.len() % 2 != 0 {
        return None;
    }
    h.chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_postgis_hex() {
        // SELECT 'SRID=4326;POINT(1 2)'::geometry
        let hex = "0101000020E6100000000000000000F03F0000000000000040";
        let (srid, wkb) = from_hex(hex).expect("2-D EWKB");
        assert_eq!(srid, 4326);
        assert_eq!(
            wkb,
            decode_hex("0101000000000000000000F03F0000000000000040").expect("hex")
        );
        assert_eq!(to_hex(srid, &wkb), hex);
        let plain = "0101000000000000000000F03F0000000000000040";
        assert_eq!(from_hex(plain).map(|(s, _)| s), Some(0));
        assert_eq!(to_hex(0, &decode_hex(plain).expect("hex")), plain);
        // POINT Z: no MySQL form.
        assert_eq!(
            from_hex("0101000080000000000000F03F00000000000000400000000000000840"),
            None
        );
        assert_eq!(from_hex("01"), None);
        assert_eq!(from_hex("zz"), None);
    }
}
