// node-postgres through pgmarina: named queries ({name, text, values}) from 20 clients, each
// prepared once per connection by the driver and executed on whichever server comes next.
// Connection parameters come from the PG* environment variables. Exit 77: no pg module.
'use strict';
let pg;
try {
    pg = require('pg');
} catch (e) {
    process.exit(77);
}

async function client(n) {
    const conn = new pg.Client();
    await conn.connect();
    try {
        for (let i = 0; i < 20; ++i) {
            const sum = await conn.query({name: 'sum', text: 'SELECT $1::int + $2::int AS v',
                                          values: [i, n]});
            if (sum.rows[0].v !== i + n) throw new Error(`sum ${i}: ${sum.rows[0].v}`);
            const echo = await conn.query({name: 'echo', text: 'SELECT $1::text AS v',
                                           values: [`c${n}`]});
            if (echo.rows[0].v !== `c${n}`) throw new Error(`echo ${i}: ${echo.rows[0].v}`);
        }
    } finally {
        await conn.end();
    }
}

Promise.allSettled(Array.from({length: 20}, (_, n) => client(n))).then((results) => {
    const failed = results.filter((r) => r.status === 'rejected');
    for (const f of failed) console.log(String(f.reason));
    process.exit(failed.length === 0 ? 0 : 1);
});
