package control

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// MarshalJSON writes the paragraph as a JSON object whose keys are the field names in
// paragraph order: {"Package": "hello", "Version": "1.0", ...}.
func (p Paragraph) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range p.Fields {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(f.Name)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(f.Value)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON reads the object MarshalJSON writes, keeping the key order.
func (p *Paragraph) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("control paragraph: want a JSON object")
	}
	var fields []Field
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string)
		var value string
		if err := dec.Decode(&value); err != nil {
			return fmt.Errorf("control paragraph: field %q: %w", name, err)
		}
		fields = append(fields, Field{Name: name, Value: value})
	}
	if _, err := dec.Token(); err != nil {
		return err
	}
	p.Fields = fields
	return nil
}
