package main

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// appendMessage appends what tern sub prints of m, as mosquitto_sub does:
// the -F format if given; else with -v "TOPIC PAYLOAD", or "TOPIC (null)"
// for an empty payload; else the payload, nothing for an empty one. A
// newline follows unless -N (with -N, -v prints nothing of an empty
// message, as mosquitto).
func appendMessage(dst []byte, o *clientOpts, m *message, now time.Time) []byte {
	eol := !o.noEOL
	switch {
	case o.formatSet:
		dst = appendFormat(dst, o.format, m, now)
	case o.verbose && len(m.payload) == 0:
		if eol {
			dst = append(dst, m.topic...)
			dst = append(dst, " (null)"...)
		}
	case o.verbose:
		dst = append(dst, m.topic...)
		dst = append(dst, ' ')
		dst = append(dst, m.payload...)
	case len(m.payload) == 0:
		return dst
	default:
		dst = append(dst, m.payload...)
	}
	if eol {
		dst = append(dst, '\n')
	}
	return dst
}

// escapes maps the letter after a backslash in -F to the byte it prints.
var escapes = map[byte]byte{'\\': '\\', '0': 0, 'a': '\a', 'e': 0x1b, 'n': '\n', 't': '\t', 'r': '\r', 'v': '\v'}

const formatLetters = "%tpxXlmqrUICDEFRSP"

// checkFormat refuses the -F formats appendFormat does not know.
func checkFormat(f string) error {
	for i := 0; i < len(f); i++ {
		switch f[i] {
		case '%':
			spec, n := parseSpec(f[i+1:])
			i += n
			if i >= len(f) {
				return fmt.Errorf("ends in the middle of %%%s", spec.text)
			}
			if !strings.ContainsRune(formatLetters, rune(f[i])) {
				return fmt.Errorf("unknown conversion %%%s%c (known: %s)", spec.text, f[i], strings.Join(strings.Split(formatLetters, ""), " "))
			}
		case '\\':
			i++
			if i >= len(f) {
				return fmt.Errorf(`ends with a lone \`)
			}
			if _, ok := escapes[f[i]]; !ok {
				return fmt.Errorf(`unknown escape \%c (known: \\ \0 \a \e \n \t \r \v)`, f[i])
			}
		}
	}
	return nil
}

// fmtSpec is the [-][0][width][.precision] between % and the letter.
type fmtSpec struct {
	left  bool
	zero  bool
	width int
	prec  int // -1 for none
	text  string
}

func parseSpec(s string) (fmtSpec, int) {
	sp := fmtSpec{prec: -1}
	i := 0
	if i < len(s) && s[i] == '-' {
		sp.left = true
		i++
	}
	if i < len(s) && s[i] == '0' {
		sp.zero = true
		i++
	}
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		sp.width = sp.width*10 + int(s[i]-'0')
	}
	if i < len(s) && s[i] == '.' {
		sp.prec = 0
		for i++; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			sp.prec = sp.prec*10 + int(s[i]-'0')
		}
	}
	sp.text = s[:i]
	return sp, i + 1
}

func (sp fmtSpec) appendStr(dst []byte, s string) []byte {
	if sp.prec >= 0 && len(s) > sp.prec {
		s = s[:sp.prec]
	}
	return sp.pad(dst, s, ' ')
}

func (sp fmtSpec) appendInt(dst []byte, n int64) []byte {
	pad := byte(' ')
	if sp.zero && !sp.left {
		pad = '0'
	}
	return sp.pad(dst, strconv.FormatInt(n, 10), pad)
}

// blank is what an absent property prints: the field width of padding.
func (sp fmtSpec) blank(dst []byte) []byte { return sp.pad(dst, "", ' ') }

func (sp fmtSpec) pad(dst []byte, s string, pad byte) []byte {
	fill := sp.width - len(s)
	if sp.left {
		dst = append(dst, s...)
	}
	for ; fill > 0; fill-- {
		dst = append(dst, pad)
	}
	if !sp.left {
		dst = append(dst, s...)
	}
	return dst
}

// appendFormat prints m by a format checkFormat accepted.
func appendFormat(dst []byte, f string, m *message, now time.Time) []byte {
	p := m.props
	if p == nil {
		p = &props{}
	}
	for i := 0; i < len(f); i++ {
		switch f[i] {
		case '%':
			sp, n := parseSpec(f[i+1:])
			i += n
			switch f[i] {
			case '%':
				dst = append(dst, '%')
			case 't':
				dst = sp.appendStr(dst, m.topic)
			case 'p':
				dst = sp.appendStr(dst, string(m.payload))
			case 'x':
				dst = sp.appendStr(dst, hex.EncodeToString(m.payload))
			case 'X':
				dst = sp.appendStr(dst, strings.ToUpper(hex.EncodeToString(m.payload)))
			case 'l':
				dst = sp.appendInt(dst, int64(len(m.payload)))
			case 'm':
				dst = sp.appendInt(dst, int64(m.id))
			case 'q':
				dst = append(dst, '0'+m.qos)
			case 'r':
				dst = append(dst, "01"[boolInt(m.retain)])
			case 'U':
				dst = fmt.Appendf(dst, "%d.%09d", now.Unix(), now.Nanosecond())
			case 'I':
				dst = sp.appendStr(dst, now.Format("2006-01-02T15:04:05-0700"))
			case 'C':
				dst = sp.appendStr(dst, p.contentType)
			case 'D':
				dst = append(dst, p.correlationData...)
			case 'R':
				dst = sp.appendStr(dst, p.responseTopic)
			case 'E':
				dst = appendOpt(dst, sp, p.messageExpiry)
			case 'F':
				dst = appendOpt(dst, sp, p.payloadFormat)
			case 'S':
				dst = appendOpt(dst, sp, p.subID)
			case 'P':
				for j, kv := range p.user {
					if j > 0 {
						dst = append(dst, ' ')
					}
					dst = append(dst, kv[0]...)
					dst = append(dst, ':')
					dst = append(dst, kv[1]...)
				}
			}
		case '\\':
			i++
			dst = append(dst, escapes[f[i]])
		default:
			dst = append(dst, f[i])
		}
	}
	return dst
}

func appendOpt[T byte | uint32 | int](dst []byte, sp fmtSpec, v *T) []byte {
	if v == nil {
		return sp.blank(dst)
	}
	return sp.appendInt(dst, int64(*v))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// topicMatches reports whether topic matches filter (MQTT 5.0 section 4.7):
// '+' is one level, '#' the rest, including the parent level; a filter
// starting with a wildcard does not match a topic starting with '$'
// (MQTT-4.7.2-1).
func topicMatches(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	fs, ts := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, f := range fs {
		if f == "#" {
			return true
		}
		if i >= len(ts) || (f != "+" && f != ts[i]) {
			return false
		}
	}
	return len(fs) == len(ts)
}
