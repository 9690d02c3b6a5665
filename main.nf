#!/usr/bin/env nextflow
/*
 * cfrna: plasma cell-free RNA sequencing -> QC-gated gene counts, differential expression and
 * pathway signatures. The same stages as `cfrna run`, with the same output tree under --outdir.
 *
 *   nextflow run . -profile test                      # simulated cohort, 2 cores
 *   nextflow run . --input samplesheet.csv --fasta genome.fa --gtf genes.gtf \
 *       --contrasts contrasts.csv --outdir results -profile slurm
 *
 * Parameters: docs/parameters.md; usage: docs/usage.md. main.nf sits at the root so that bin/
 * (the cfrna-<stage> shims) is on every task's PATH.
 */
import groovy.json.JsonSlurper

nextflow.enable.dsl = 2
// modules report their tool versions on the `versions` topic (a preview in Nextflow 24.04/24.10,
// stable from 25.04, where this line is no longer needed)
nextflow.preview.topic = true

include { CFRNA } from './workflow/workflows/cfrna'

// Levenshtein distance, for "did you mean" on unknown parameters
def editDistance(String a, String b) {
    def prev = (0..b.length()).toList()
    for (int i = 1; i <= a.length(); i++) {
        def cur = [i]
        for (int j = 1; j <= b.length(); j++) {
            cur << [prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)].min()
        }
        prev = cur
    }
    return prev[b.length()]
}

// One problem of one parameter against its nextflow_schema.json property, or null. No plugin
// (nf-schema cannot be fetched offline): type, enum, minimum/maximum, pattern and `exists` only.
def schemaProblem(String name, value, Map prop) {
    if (value == null) return null
    def type = prop.type
    def text = value.toString()
    if (type == 'boolean') {
        if (!(value instanceof Boolean)) return "--${name} must be true or false, not '${text}'"
    } else if (type == 'integer') {
        if (value instanceof Boolean || !text.isLong()) return "--${name} must be an integer, not '${text}'"
    } else if (type == 'number') {
        if (value instanceof Boolean || !text.isNumber()) return "--${name} must be a number, not '${text}'"
    } else if (type == 'string') {
        // a flag given without its value (`--input --fasta g.fa`) arrives as true
        if (value instanceof Boolean) return "--${name} needs a value (a ${prop.format ?: 'string'})"
    }
    if (prop.enum && !(text in prop.enum.collect { it.toString() })) {
        def choices = prop.enum.size() > 1 ? prop.enum[0..-2].join(', ') + ' or ' + prop.enum[-1] : prop.enum[0]
        return "--${name} must be ${choices}, not '${text}'"
    }
    if (type in ['integer', 'number']) {
        def x = text.toBigDecimal()
        if (prop.minimum != null && x < (prop.minimum as BigDecimal)) return "--${name} must be >= ${prop.minimum}, not ${text}"
        if (prop.maximum != null && x > (prop.maximum as BigDecimal)) return "--${name} must be <= ${prop.maximum}, not ${text}"
    }
    if (type == 'string' && prop.pattern && !(text ==~ prop.pattern)) {
        return "--${name} '${text}' does not match ${prop.pattern}"
    }
    if (type == 'string' && prop.exists && prop.format in ['file-path', 'directory-path'] && !file(text).exists()) {
        return "--${name}: ${text} does not exist"
    }
    return null
}

// Every parameter against nextflow_schema.json: unknown names (with the closest known one) and
// values of the wrong type/choice/range, all at once, before any task starts.
def validateParams() {
    def schemaFile = file("${projectDir}/nextflow_schema.json")
    def schema = new JsonSlurper().parse(schemaFile.toFile())
    def props = [:]
    schema['$defs'].each { gid, group -> props.putAll(group.properties ?: [:]) }
    def errors = []
    def unknown = []
    params.each { String k, v ->
        if (k == 'layout') return   // the output tree's folders (conf/layout.config), not a user parameter
        if (props.containsKey(k)) {
            def p = schemaProblem(k, v, props[k])
            if (p) errors << p
            return
        }
        // Nextflow turns --kebab-case names into camelCase: report the name as typed
        def kebab = k.replaceAll(/([A-Z])/, { m -> '-' + m[1].toLowerCase() })
        if (kebab != k && params.containsKey(kebab)) return
        def typed = kebab != k && workflow.commandLine?.contains("--${kebab}") ? kebab : k
        def snake = typed.replace('-', '_')
        def hint = props.keySet().min { editDistance(snake, it) }
        def near = editDistance(snake, hint) <= Math.max(2, snake.length().intdiv(4))
        unknown << "--${typed}" + (near ? " (did you mean --${hint}?)" : '')
    }
    if (unknown) {
        def msg = "unknown parameter(s): ${unknown.join(', ')}; pipeline parameters are listed in nextflow_schema.json and docs/parameters.md"
        if (params.validate_params == false) log.warn "cfrna: ${msg}"
        else errors << msg + " (--validate_params false makes this a warning)"
    }
    return errors
}

def checkParams() {
    def errors = validateParams()
    if (!params.simulate) {
        ['input', 'fasta', 'gtf'].each { p ->
            if (!params[p]) errors << "--${p} is required (or use -profile test for a simulated cohort)"
        }
    }
    if (params.simulate && params.input) {
        errors << "--input and --simulate (set by -profile test) exclude each other: add --simulate false to run on --input"
    }
    if (!params.outdir) errors << "--outdir is required"
    if (errors) {
        error("cfrna: invalid parameters:\n  " + errors.unique().join("\n  ") + "\n(see docs/parameters.md)")
    }
}

workflow {
    checkParams()
    CFRNA()
}

workflow.onComplete {
    if (workflow.success) {
        log.info "cfrna: done; report: ${params.outdir}/report/index.html"
    } else {
        log.error "cfrna: failed (${workflow.errorMessage ?: 'see .nextflow.log'}); fix the cause and rerun with -resume"
    }
}
