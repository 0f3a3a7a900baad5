package version

import "testing"

func BenchmarkParse(b *testing.B) {
	for b.Loop() {
		if _, err := Parse("2:1.0~rc1+dfsg-0ubuntu1~22.04.1"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompare(b *testing.B) {
	x, y := MustParse("2:1.0~rc1+dfsg-0ubuntu1~22.04.1"), MustParse("2:1.0~rc1+dfsg-0ubuntu1~22.04.2")
	for b.Loop() {
		if Compare(x, y) >= 0 {
			b.Fatal("wrong order")
		}
	}
}
