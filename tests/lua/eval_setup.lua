-- Tarantool's side of tests/test_eval.py (tests/apps/eval_app.py is Styx's).
box.cfg{listen = os.getenv('LISTEN'), work_dir = os.getenv('WORK')}
box.schema.user.grant('guest', 'read,write,execute', 'universe', nil, {if_not_exists = true})
box.schema.user.create('limited', {password = 'pw', if_not_exists = true})
local s = box.schema.space.create('t', {format = {{'id', 'unsigned'}, {'name', 'string'}}, if_not_exists = true})
s:create_index('pk', {parts = {1, 'unsigned'}, if_not_exists = true})
-- tests/test_lua_modules.py: any fields, for uuid and decimal values.
box.schema.space.create('ext', {if_not_exists = true}):create_index('pk', {parts = {1, 'unsigned'}, if_not_exists = true})
print('READY')
io.stdout:flush()
