package codec

// MaxVarint is the largest value a variable byte integer can hold (1.5.5).
const MaxVarint = 268_435_455

// varintSize returns how many bytes v takes as a variable byte integer.
func varintSize(v int) int {
	switch {
	case v < 128:
		return 1
	case v < 16_384:
		return 2
	case v < 2_097_152:
		return 3
	}
	return 4
}

// appendVarint appends v (0..MaxVarint) as a variable byte integer.
func appendVarint(dst []byte, v int) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

// AppendVarint appends v as a variable byte integer (1.5.5). v must be in
// 0..MaxVarint; larger values are a bug in the caller.
func AppendVarint(dst []byte, v int) []byte {
	if v < 0 || v > MaxVarint {
		panic("BUG: codec: variable byte integer out of range")
	}
	return appendVarint(dst, v)
}

// readVarint decodes a variable byte integer at the start of b. It returns the
// value and the bytes it took; n == 0 means b ends inside the integer. A fifth
// byte or a non-minimal encoding is malformed (MQTT-1.5.5-1).
func readVarint(b []byte) (v, n int, err error) {
	shift := 0
	for i := 0; i < 4; i++ {
		if i >= len(b) {
			return 0, 0, nil
		}
		c := b[i]
		v |= int(c&0x7f) << shift
		if c < 0x80 {
			if c == 0 && i > 0 {
				return 0, 0, ErrVarintNotMinimal
			}
			return v, i + 1, nil
		}
		shift += 7
	}
	return 0, 0, ErrMalformedVarint
}

// ReadVarint decodes a variable byte integer at the start of b and returns the
// value and its length. It returns ErrNeedMore when b ends inside it.
func ReadVarint(b []byte) (int, int, error) {
	v, n, err := readVarint(b)
	if err == nil && n == 0 {
		return 0, 0, ErrNeedMore
	}
	return v, n, err
}
