// pgJDBC through pgmarina: a PreparedStatement executed 10 times per connection, so that the
// driver switches to a named server-side statement (S_<n>) after prepareThreshold (5) uses, on
// several connections at once, in autocommit mode and in a transaction. Connection parameters
// come from the PG* environment variables; exit 1 on any failure.
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

public class PreparedJdbc {
    static final AtomicInteger failures = new AtomicInteger();

    static void client(int n, String url, String user, String password) {
        try (Connection conn = DriverManager.getConnection(url, user, password)) {
            for (boolean autocommit : new boolean[] {true, false}) {
                conn.setAutoCommit(autocommit);
                try (PreparedStatement ps = conn.prepareStatement("SELECT ?::int + ?::int")) {
                    for (int i = 0; i < 10; ++i) {
                        ps.setInt(1, i);
                        ps.setInt(2, n);
                        try (ResultSet rs = ps.executeQuery()) {
                            if (!rs.next() || rs.getInt(1) != i + n) {
                                throw new AssertionError("wrong result at " + i);
                            }
                        }
                    }
                }
                if (!autocommit) conn.commit();
            }
        } catch (Throwable e) {
            System.out.println("client " + n + ": " + e);
            failures.incrementAndGet();
        }
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://" + System.getenv("PGHOST") + ":" + System.getenv("PGPORT")
                + "/" + System.getenv("PGDATABASE");
        List<Thread> threads = new ArrayList<>();
        for (int n = 0; n < 8; ++n) {
            final int id = n;
            Thread t = new Thread(() -> client(id, url, System.getenv("PGUSER"),
                    System.getenv("PGPASSWORD")));
            t.start();
            threads.add(t);
        }
        for (Thread t : threads) t.join();
        System.exit(failures.get() == 0 ? 0 : 1);
    }
}
