package version_test

import (
	"fmt"
	"sort"

	"github.com/spf13/afero"

	"github.com/upds/upds/stdlib/version"
)

func ExampleCompare() {
	vs := []string{"1.0", "1.0-1", "1.0~rc1", "1:0.9", "1.0+git1", "1.0a", "1.0.1", "1.10", "1.9"}
	sort.Slice(vs, func(i, j int) bool {
		return version.Compare(version.MustParse(vs[i]), version.MustParse(vs[j])) < 0
	})
	fmt.Println(vs)
	// Output: [1.0~rc1 1.0 1.0-1 1.0a 1.0+git1 1.0.1 1.9 1.10 1:0.9]
}

func ExampleBump() {
	v := version.MustParse("2:1.9-3")
	for _, part := range version.Parts() {
		next, _ := version.Bump(v, part)
		fmt.Println(part, next)
	}
	// Output:
	// major 2:2.0
	// minor 2:1.10
	// patch 2:1.9.1
	// revision 2:1.9-4
}

func ExampleBumpFile() {
	fsys := afero.NewMemMapFs()
	afero.WriteFile(fsys, "VERSION", []byte("1.4.2\n"), 0o644)
	old, new, err := version.BumpFile(fsys, "VERSION", version.Minor)
	fmt.Println(old, new, err)
	data, _ := afero.ReadFile(fsys, "VERSION")
	fmt.Printf("%q\n", data)
	// Output:
	// 1.4.2 1.5.0 <nil>
	// "1.5.0\n"
}

func ExampleSatisfies() {
	installed := version.MustParse("3.11.2-6")
	fmt.Println(version.Satisfies(installed, ">=", version.MustParse("3.11")))
	fmt.Println(version.Satisfies(installed, "<<", version.MustParse("3.11.2-6+deb12u1")))
	// Output:
	// true
	// true
}
