# Runs `puppet lookup` (Puppet::Application::Lookup, with all of its command-line handling, node
# and fact set-up) but looks up a whole batch of queries in the one compiled scope, so that a
# conformance case costs one Puppet start instead of one per key.
#
#   HIERA_QUERIES=queries.json HIERA_RESULTS=results.jsonl ruby puppet_lookup_batch.rb <puppet lookup options>
#
# queries.json: [{"key": "a" | ["a", "b"], "merge": "deep" | {"strategy": ...}, "default": ...,
#                 "type": "Puppet type"}, ...]
# results.jsonl: one line per query: {"status": "found", "json": "<puppet's JSON rendering>"},
# {"status": "notfound"} or {"status": "error", "class": ..., "message": ...}.
require 'json'
require 'puppet'
require 'puppet/util/command_line'
require 'puppet/application/lookup'

class Puppet::Application::Lookup
  # One query in a compiled scope, as `puppet lookup` answers it (puppet_lookup_nodes.rb too).
  def answer(scope, query, renderer)
    invocation = Puppet::Pops::Lookup::Invocation.new(scope, {}, {}, nil)
    type = query['type'] && Puppet::Pops::Types::TypeParser.singleton.parse(query['type'], scope)
    value = Puppet::Pops::Lookup.lookup(query['key'], type, query['default'],
                                        query.key?('default'), query['merge'], invocation)
    { 'status' => 'found', 'json' => renderer.render(value) }
  rescue Puppet::DataBinding::LookupError => e
    if e.message.start_with?('Function lookup() did not find a value')
      { 'status' => 'notfound' }
    else
      { 'status' => 'error', 'class' => e.class.name, 'message' => e.message }
    end
  rescue StandardError => e
    { 'status' => 'error', 'class' => e.class.name, 'message' => e.message }
  end

  def main
    queries = JSON.parse(File.read(ENV.fetch('HIERA_QUERIES')))
    renderer = Puppet::Network::FormatHandler.format(:json)
    File.open(ENV.fetch('HIERA_RESULTS'), 'w') do |out|
      generate_scope do |scope|
        queries.each { |query| out.puts(JSON.generate(answer(scope, query, renderer))) }
      end
    end
    exit(0)
  end
end

Puppet::Util::CommandLine.new('puppet', ['lookup'] + ARGV).execute if __FILE__ == $PROGRAM_NAME
