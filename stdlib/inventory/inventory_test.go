package inventory_test

import (
	"strings"
	"testing"

	"github.com/spf13/afero"

	"github.com/upds/upds/interp"
	"github.com/upds/upds/stdlib/inventory"
)

func load(t *testing.T, src string) (*inventory.Inventory, error) {
	t.Helper()
	fs := afero.NewMemMapFs()
	afero.WriteFile(fs, "BUILD.star", []byte(src), 0o644)
	b, err := interp.Load(interp.Options{FS: fs, Dir: "/proj", Builtins: inventory.Builtins(), Env: []string{}})
	if err != nil {
		return nil, err
	}
	return inventory.Of(b.Host)
}

func TestInventory(t *testing.T) {
	inv, err := load(t, `
fleet(repo = "https://apt.example.com/", key = "repo/public/key.asc")
prod = [server(n, ssh = "deploy@%s.example.com" % n, packages = ["hello-server", "hello-config-production"],
               groups = ["web", "production"]) for n in ["web1", "web2"]]
beta = server("beta1", packages = ["hello-server", "hello-config-beta"], groups = ["web", "beta"])
db = server("db1", ssh = "root@10.0.0.7:2222")
print(prod[0].name, prod[0].ssh, beta.packages, db.groups)
`)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Repo == nil || inv.Repo.URL != "https://apt.example.com/" || inv.Repo.Key != "/proj/repo/public/key.asc" || inv.Repo.Suite != "stable" {
		t.Errorf("repository %+v", inv.Repo)
	}
	var names []string
	for _, s := range inv.Servers {
		names = append(names, s.Name+"="+s.SSH)
	}
	if got := strings.Join(names, " "); got != "web1=deploy@web1.example.com web2=deploy@web2.example.com beta1=beta1 db1=root@10.0.0.7:2222" {
		t.Errorf("servers %s", got)
	}
	if s := inv.Servers[0]; strings.Join(s.Packages, ",") != "hello-server,hello-config-production" || s.Pos != "BUILD.star:3:15" {
		t.Errorf("web1 %+v", s)
	}
	if got := strings.Join(inv.Groups(), ","); got != "beta,production,web" {
		t.Errorf("groups %s", got)
	}
	for _, c := range []struct {
		names []string
		want  string
	}{
		{nil, "web1 web2 beta1 db1"},
		{[]string{"db1", "web2"}, "web2 db1"},
		{[]string{"web"}, "web1 web2 beta1"},
		{[]string{"production", "web1"}, "web1 web2"},
	} {
		sel, err := inv.Select(c.names)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range sel {
			got = append(got, s.Name)
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("Select(%q) = %v, want %s", c.names, got, c.want)
		}
	}
	if _, err := inv.Select([]string{"web3"}); err == nil || !strings.Contains(err.Error(), `no server or group "web3"`) || !strings.Contains(err.Error(), "servers: web1, web2, beta1, db1") {
		t.Errorf("unknown server: %v", err)
	}
}

func TestInventoryErrors(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{`server("Web1")`, "name"},
		{`server("web1", ssh = "root@")`, "ssh"},
		{`server("web1", packages = ["Bad_Name"])`, "packages"},
		{`server("web1", groups = ["web1"])`, "group"},
		{`server("web1")` + "\n" + `server("web1")`, "server web1 is already declared at BUILD.star:1:7"},
		{`server("web1", groups = ["db1"])` + "\n" + `server("db1")`, "also the name of the server"},
		{`fleet(repo = "ftp://x/", key = "k")`, "want http"},
		{`fleet(repo = "http://x/", key = "k")` + "\n" + `fleet(repo = "http://y/", key = "k")`, "fleet: called twice (first at BUILD.star:1:6)"},
		{`task("x", run = lambda ctx: server("a"))` + "\n" + `server("b", packages = 3)`, "packages"},
	} {
		_, err := load(t, c.src)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n%v, want an error with %q", c.src, err, c.want)
		}
	}
	// Without server() or fleet(): an empty inventory.
	inv, err := load(t, `project(name = "x")`)
	if err != nil || len(inv.Servers) != 0 || inv.Repo != nil {
		t.Errorf("empty inventory: %+v %v", inv, err)
	}
	if _, err := inv.Select([]string{"web1"}); err == nil || !strings.Contains(err.Error(), "declares no server()") {
		t.Errorf("Select on an empty inventory: %v", err)
	}
}
